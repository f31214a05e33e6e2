#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (see the device tool's README): `stylize bench` at
# 256 and 512 px through native wgpu on Vulkan, with every conv kernel variant per layer shape and the
# whole step per forced variant against the autotuner's choice and the loss sums by tree against
# subgroups (--variants), the same with the weights in f16 (--precision f16, where the GPU has
# shader-f16, with its cost on the objective), then the same objective in PyTorch on the same GPU.
# The autotuner's cache file comes back in $OUT too.
# Build the release binary here first (`cargo build --release`), carry it and the Vulkan loader:
#   run(command="bash tests/device/run.sh", carry=[".gl", "target/release/stylize"])
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if ! ls /usr/share/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
STYLIZE_CACHE_DIR="$out" WGPU_BACKEND=vulkan ./target/release/stylize bench --sizes 64,128,256,512 --steps 20 --variants 2>&1 | tee "$out/stylize-bench.md"
STYLIZE_CACHE_DIR="$out" WGPU_BACKEND=vulkan ./target/release/stylize bench --sizes 256,512 --steps 20 --variants --precision f16 2>&1 | tee "$out/stylize-bench-f16.md"
python3 tests/device/torch_objective.py --sizes 64,128,256,512 --steps 20 2>&1 | tee "$out/torch.md"
python3 tests/device/torch_objective.py --sizes 256,512 --steps 20 --tf32 2>&1 | tee "$out/torch-tf32.md"
