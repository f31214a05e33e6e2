#!/usr/bin/env python3
"""The same objective as `stylize` (canonical form, default settings) in PyTorch, for speed
comparisons on a real GPU. Reads the committed weights file (weights/vgg19.q8.bin, format in
weights/README.md) so that both run the very same network.

    python3 tests/device/torch_objective.py --sizes 256,512 --steps 20 [--device cuda]

Prints one line per size: ms per Adam step (forward + backward + update, as `stylize bench`
times it) and peak GPU memory. Needs torch, numpy and pillow.
"""
import argparse, hashlib, struct, sys, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
VGG = ["conv1_1", "conv1_2", "pool", "conv2_1", "conv2_2", "pool", "conv3_1", "conv3_2", "conv3_3",
       "conv3_4", "pool", "conv4_1", "conv4_2", "conv4_3", "conv4_4", "pool", "conv5_1"]


def load_weights(path):
    """Parses the stylize weights file; returns ({layer: (OIHW kernel, bias)}, (order, scale, mean))."""
    data = Path(path).read_bytes()
    if data[:8] != b"STYLWGTS":
        sys.exit(f"{path}: not a stylize weights file")
    version, count, header_len, _reserved, payload_len = struct.unpack_from("<IIIIQ", data, 8)
    if version != 1 or len(data) != header_len + payload_len:
        sys.exit(f"{path}: unsupported version or truncated file")
    payload = data[header_len:]
    if hashlib.sha256(payload).digest() != data[header_len - 64:header_len - 32]:
        sys.exit(f"{path}: payload checksum mismatch")
    tensors = {}
    for i in range(count):
        entry = 32 + 72 * i
        name = data[entry:entry + 32].rstrip(b"\0").decode()
        dtype, rank = struct.unpack_from("<II", data, entry + 32)
        dims = struct.unpack_from("<4I", data, entry + 40)[:rank]
        offset, length = struct.unpack_from("<QQ", data, entry + 56)
        np_type = {1: np.float32, 2: np.int8}[dtype]
        tensors[name] = np.frombuffer(payload, np_type, length // np.dtype(np_type).itemsize, offset).reshape(dims)
    conv = 32 + 72 * count
    order = data[conv:conv + 4].rstrip(b"\0").decode()
    scale, m0, m1, m2 = struct.unpack_from("<4f", data, conv + 4)
    layers = {}
    for name in {n.split(".")[0] for n in tensors}:
        kernel = tensors[f"{name}.kernel"].astype(np.float32)  # [cout, 3, 3, cin]
        if f"{name}.kernel_scale" in tensors:
            kernel = kernel * tensors[f"{name}.kernel_scale"][:, None, None, None]
        layers[name] = (np.ascontiguousarray(kernel.transpose(0, 3, 1, 2)), tensors[f"{name}.bias"].copy())
    return layers, (order, scale, (m0, m1, m2))


class Vgg:
    def __init__(self, layers, convention, device):
        self.w = {k: (torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)) for k, (a, b) in layers.items()}
        order, self.scale, mean = convention
        self.perm = [{"R": 0, "G": 1, "B": 2}[c] for c in order]
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)

    def features(self, x, wanted):
        """x: 1x3xHxW RGB in [0,1]; returns {relu name: post-ReLU map} for the wanted layers."""
        v = self.scale * x[:, self.perm] - self.mean
        out, deepest = {}, max(VGG.index(n.replace("relu", "conv")) for n in wanted)
        for op in VGG[:deepest + 1]:
            if op == "pool":
                v = F.max_pool2d(v, 2)  # floor mode, as stylize
            else:
                w, b = self.w[op]
                v = F.relu(F.conv2d(v, w, b, padding=1))
                if op.replace("conv", "relu") in wanted:
                    out[op.replace("conv", "relu")] = v
        return out


def gram(f):
    _, c, h, w = f.shape
    m = f.view(c, h * w)
    return m @ m.t() / (c * h * w)


def bench(net, size, steps, device):
    content_layers, style_layers = ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, size, size, generator=g).to(device)
    style = torch.rand(1, 3, size, size, generator=g).to(device)
    with torch.no_grad():
        fc = net.features(content, content_layers)
        targets = {k: gram(v) for k, v in net.features(style, style_layers).items()}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.02)

    def step():
        opt.zero_grad()
        f = net.features(x, content_layers + style_layers)
        lc = sum(F.mse_loss(f[k], fc[k]) for k in content_layers)
        ls = sum(F.mse_loss(gram(f[k]), targets[k]) for k in style_layers)
        loss = 5 * lc + 100 * ls
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)

    step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t) * 1000 / steps
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    print(f"| {size} | {ms:.1f} | {peak:.0f} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--weights", default=str(ROOT / "weights" / "vgg19.q8.bin"))
    p.add_argument("--tf32", action="store_true", help="let cuDNN and matmuls use TF32 (default: exact fp32)")
    a = p.parse_args()
    torch.backends.cudnn.benchmark = True
    # fp32 means fp32: TF32 (10-bit mantissa products on Ampere and later) only when asked for.
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    net = Vgg(*load_weights(a.weights), a.device)
    name = torch.cuda.get_device_name() if a.device == "cuda" else "CPU"
    precision = "TF32" if a.tf32 else "float32 (TF32 off)"
    print(f"PyTorch {torch.__version__} on {name}, {precision}, default settings, Adam")
    print("| size | ms/step | peak MiB |\n|---|---|---|")
    for s in a.sizes.split(","):
        bench(net, int(s), a.steps, a.device)


if __name__ == "__main__":
    main()
