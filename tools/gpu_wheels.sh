#!/usr/bin/env bash
# Fetch the wheels that tools/gpu_check.sh installs on a GPU machine without internet, into .whl/ (git-ignored:
# add `/.whl/` to .git/info/exclude). Run here, where PyPI is reachable. The GPU image is taken to have Python 3.12,
# torch 2.11 (CUDA 13), tokenizers 0.23, huggingface_hub 1.3x, safetensors >= 0.8, lightning, scipy, httpx,
# tensorboard and matplotlib; these are what the benchmark imports beyond that, at the versions tested here.
#
# bitsandbytes ships one library per CUDA/ROCm/XPU release (43 MB); only the CPU and CUDA 13 ones are kept, so that
# the folder travels with the work tree (about 20 MB in all).
set -euo pipefail

DEST=${1:-.whl}
mkdir -p "$DEST"
download() {
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$DEST" "$@"
}

# Always installed (they shadow the image's copies): our pins and what the image lacks.
download transformers==5.24.0 peft==0.21.2 accelerate==1.15.0 trl==1.16.0 \
    hydra-core==1.3.8 omegaconf==2.3.1 tenacity==9.2.1 soundfile==0.14.0 bitsandbytes==0.50.2
# Installed only where the image lacks them (gpu_check.sh checks): torchaudio 2.11.0 is PyPI's CUDA 13 build.
download torchaudio==2.11.0 cffi==2.0.0 pycparser==3.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 \
    xxhash==4.1.0
# antlr4-python3-runtime 4.9.3 (pinned by omegaconf 2.3) is published as a source archive only: pure Python.
python3 -m pip wheel -q --no-deps -w "$DEST" antlr4-python3-runtime==4.9.3

python3 - "$DEST" <<'EOF'
"""Drop every bitsandbytes native library but the CPU and CUDA 13 ones, and their RECORD lines."""
import sys
import zipfile
from pathlib import Path

KEEP = ("_cpu.so", "_cuda130.so", "_cuda132.so")
for wheel in Path(sys.argv[1]).glob("bitsandbytes-*.whl"):
    with zipfile.ZipFile(wheel) as src:
        names = [n for n in src.namelist() if not (n.endswith(".so") and not n.endswith(KEEP))]
        if len(names) == len(src.namelist()):
            continue  # already slimmed
        items = {n: src.read(n) for n in names}
    for name in items:
        if name.endswith(".dist-info/RECORD"):
            lines = items[name].decode().splitlines(keepends=True)
            items[name] = "".join(l for l in lines if l.split(",")[0] in items or l.startswith(name)).encode()
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in items.items():
            out.writestr(name, data)
    tmp.replace(wheel)
    print(f"{wheel.name}: kept {sorted(n for n in items if n.endswith('.so'))}")
EOF
du -ch "$DEST"/*.whl | tail -1
