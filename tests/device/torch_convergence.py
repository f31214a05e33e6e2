#!/usr/bin/env python3
"""Coarse-to-fine schedules with stylize's objective in PyTorch, to explore them faster than lavapipe
can (about 0.35 s per 256-px step on 2 CPU cores, against about 5 s). Same objective as
torch_objective.py (the committed q8 weights, canonical form, α 5, β 100, chelsea × starry_night,
images resized bicubically by PIL, style at the content's size), Adam clamped to [0,1] from the content
image; between scales the image is upsampled bicubically. Each run's final image is evaluated at the
last size, and its cost is in last-size step-equivalents (Σ steps × pixels / last pixels).

    python3 tests/device/torch_convergence.py '[{"name": "single", "schedule": [[256, 500]]},
        {"name": "c2f", "schedule": [[128, 100], [181, 100], [256, 150]], "lr": 0.03}]'

Options per run: schedule ([size, steps], ...), lr (0.02), decay (an EMA of the iterates, bias-corrected;
0 = none), ema_last_only, carry (Adam's moments carried across scales, resized), lbfgs (history: L-BFGS
as stylize's, one evaluation per step and moves capped at 0.05 on average) from scale lbfgs_from.
With no argument it runs the table in the README's "Coarse to fine" section. Needs torch, numpy and
pillow.
"""
import json, sys, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_objective import ROOT, Vgg, gram, load_weights  # noqa: E402

CONTENT_LAYERS, STYLE_LAYERS = ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
IMAGES = ROOT.parent / "shared" / "images"


def at(img, size):
    """The image with its longest side at `size`, bicubic, as 1x3xHxW in [0,1]."""
    w, h = img.size
    s = size / max(w, h)
    a = np.asarray(img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


class Objective:
    def __init__(self, net, content, style, size):
        self.net, self.content = net, at(content, size)
        with torch.no_grad():
            self.fc = net.features(self.content, CONTENT_LAYERS)
            self.targets = {k: gram(v) for k, v in net.features(at(style, size), STYLE_LAYERS).items()}

    def __call__(self, x):
        f = self.net.features(x, CONTENT_LAYERS + STYLE_LAYERS)
        lc = sum(F.mse_loss(f[k], self.fc[k]) for k in CONTENT_LAYERS)
        ls = sum(F.mse_loss(gram(f[k]), self.targets[k]) for k in STYLE_LAYERS)
        return 5 * lc + 100 * ls


def lbfgs_scale(objective, x, steps, history, lr=1.0, cap=0.05):
    """stylize's L-BFGS: torch's two-loop recursion without a line search, one evaluation per step,
    a step's mean |move| capped at `cap` from step 2 on."""
    ys, ss, g_prev, d_prev, t_prev, h_diag = [], [], None, None, None, 1.0
    x = x.detach().clone()
    n = x.numel()
    for k in range(1, steps + 1):
        xg = x.clone().requires_grad_(True)
        objective(xg).backward()
        g = xg.grad.detach().flatten()
        if k == 1:
            d, t = -g, min(1.0, 1.0 / g.abs().sum().item()) * lr
        else:
            y, s = g - g_prev, d_prev * t_prev
            ys_dot = (y @ s).item()
            if ys_dot > 1e-10:
                if len(ys) == history:
                    ys.pop(0), ss.pop(0)
                ys.append(y), ss.append(s)
                h_diag = ys_dot / (y @ y).item()
            q, alphas = -g.clone(), []
            for yi, si in reversed(list(zip(ys, ss))):
                alphas.append((si @ q) / (yi @ si))
                q -= alphas[-1] * yi
            d = q * h_diag
            for (yi, si), a in zip(zip(ys, ss), reversed(alphas)):
                d += si * (a - (yi @ d) / (yi @ si))
            t = lr
            if t * d.abs().sum().item() / n > cap:
                t = cap * n / d.abs().sum().item()
        x = x + (t * d).view_as(x)
        g_prev, d_prev, t_prev = g, d, t
    return x.clamp(0, 1)


def run(net, content, style, schedule, lr=0.02, decay=0.0, ema_last_only=False, carry=False, lbfgs=None, lbfgs_from=0):
    x, state, cost, last = None, None, 0.0, None
    for i, (size, steps) in enumerate(schedule):
        objective = Objective(net, content, style, size)
        h, w = objective.content.shape[2:]
        x = objective.content.clone() if x is None else F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
        cost, last = cost + steps * h * w, (h, w)
        if lbfgs and i >= lbfgs_from:
            x = lbfgs_scale(objective, x, steps, lbfgs)
            continue
        x = x.detach().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        if carry and state is not None:
            st = opt.state[x]
            st["step"] = state["step"].clone()
            st["exp_avg"] = F.interpolate(state["exp_avg"], size=(h, w), mode="bilinear", align_corners=False)
            st["exp_avg_sq"] = F.interpolate(state["exp_avg_sq"], size=(h, w), mode="bilinear", align_corners=False).clamp_min(0)
        average = None
        for t in range(1, steps + 1):
            opt.zero_grad()
            objective(x).backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
                if decay > 0 and (not ema_last_only or i == len(schedule) - 1):
                    weight = (1 - decay) / (1 - decay ** t)
                    average = x.detach().clone() if average is None else average + weight * (x.detach() - average)
        state = opt.state[x]
        x = (average if average is not None else x).detach()
    with torch.no_grad():
        value = Objective(net, content, style, schedule[-1][0])(x).item()
    return value, cost / (last[0] * last[1])


C2F = [[128, 100], [181, 100], [256, 150]]
# The README's table (python3 tests/device/torch_convergence.py with no argument; about 45 minutes on 2
# CPU cores).
README_RUNS = [
    {"name": "single scale, 500 steps", "schedule": [[256, 500]]},
    {"name": "single scale, 500 steps, EMA 0.95", "schedule": [[256, 500]], "decay": 0.95},
    {"name": "single scale, 250 steps, lr 0.03", "schedule": [[256, 250]], "lr": 0.03},
    {"name": "single scale, 250 steps, lr 0.05", "schedule": [[256, 250]], "lr": 0.05},
    {"name": "single scale, 250 steps, lr 0.05, EMA 0.9", "schedule": [[256, 250]], "lr": 0.05, "decay": 0.9},
    {"name": "single scale, 250 steps, lr 0.05, EMA 0.95", "schedule": [[256, 250]], "lr": 0.05, "decay": 0.95},
    {"name": "single scale, 250 steps, lr 0.08, EMA 0.95", "schedule": [[256, 250]], "lr": 0.08, "decay": 0.95},
    {"name": "single-scale L-BFGS, history 5, 250 steps", "schedule": [[256, 250]], "lbfgs": 5},
    {"name": "single-scale L-BFGS, history 20, 250 steps", "schedule": [[256, 250]], "lbfgs": 20},
    {"name": "coarse to fine (the default)", "schedule": C2F},
    {"name": "coarse to fine, EMA 0.95", "schedule": C2F, "decay": 0.95},
    {"name": "coarse to fine, EMA 0.9 at the last scale", "schedule": C2F, "decay": 0.9, "ema_last_only": True},
    {"name": "coarse to fine, EMA 0.95, Adam's moments carried", "schedule": C2F, "decay": 0.95, "carry": True},
    {"name": "coarse to fine, lr 0.03", "schedule": C2F, "lr": 0.03},
    {"name": "coarse to fine, lr 0.05", "schedule": C2F, "lr": 0.05},
    {"name": "coarse to fine 50 + 50 + 200, lr 0.05", "schedule": [[128, 50], [181, 50], [256, 200]], "lr": 0.05},
    {"name": "200 × 128 + 200 × 256, lr 0.05", "schedule": [[128, 200], [256, 200]], "lr": 0.05},
]


def main():
    torch.set_num_threads(2)
    net = Vgg(*load_weights(ROOT / "weights" / "vgg19.q8.bin"), "cpu")
    content = Image.open(IMAGES / "content" / "chelsea.png").convert("RGB")
    style = Image.open(IMAGES / "style" / "starry_night.jpg").convert("RGB")
    print("| run | objective at the last size | step-equivalents | seconds |\n|---|---|---|---|")
    for config in json.loads(sys.argv[1]) if len(sys.argv) > 1 else README_RUNS:
        started = time.time()
        name = config.pop("name")
        value, cost = run(net, content, style, **config)
        print(f"| {name} | {value:.4e} | {cost:.0f} | {time.time() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
