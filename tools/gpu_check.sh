#!/usr/bin/env bash
# The GPU runs of the step benchmark (docs/performance.md, "--preset paper") on a lent GPU machine without internet,
# in about 7 minutes. From the repository root, with the wheels of tools/gpu_wheels.sh in .whl/:
#
#     OUT=/some/folder bash tools/gpu_check.sh
#
# Stages, most important first, each under `timeout` so that whatever finished comes back when time runs out:
#   1. the whole 7B Qwen2-Audio shape, QLoRA NF4, G=8, 256 tokens, 30 s clip: absolute step time, tokens/s and
#      peak memory against the 24 GiB target, the process's allocations capped at 24 GiB, once per way of sampling:
#      the hf engine on the policy's 4-bit + LoRA weights, the hf engine on merged bf16 generation weights (goal
#      <= 12 s), and the vLLM sidecar (goal <= 8 s) when VLLM_VENV names a vLLM environment built for this GPU
#      (its model is built once, on the GPU, into $AUDIO_THINKER_CACHE);
#   2. the paper preset's comparison (ours, naive floor, TRL where it imports; each step paired with a tight step);
#   3. the Whisper-large encoder comparison (audio encoded once vs re-encoded per sample and pass);
#   4. the gpu-marked test (`pytest -m gpu tests/unit/tools/test_bench_runs.py`), which reruns stage 1's figures.
# $OUT receives log.txt and each stage's results JSON (also written to tools/bench/results/).
#
# Knobs (environment): BUDGET_S (seconds for everything, default 460), ROUNDS (stages 2-3, default 3),
# STEPS_7B (measured 7B steps after one warm-up, default 2), AUDIO_THINKER_CACHE (default /tmp/audio_thinker_cache),
# VLLM_VENV (a vLLM environment for the sidecar variant; unset: that variant is skipped and says so).
set -uo pipefail # no -e: a failed stage must not cost the stages after it

: "${OUT:?set OUT to the folder that receives the results}"
BUDGET_S=${BUDGET_S:-460}
ROUNDS=${ROUNDS:-3}
STEPS_7B=${STEPS_7B:-2}
SITE=/tmp/site
# Installed only where the image lacks them; every other wheel in .whl/ shadows the image's copy.
IF_MISSING=" torchaudio cffi pycparser datasets dill multiprocess xxhash "
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false PIP_ROOT_USER_ACTION=ignore
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 # no internet there: never wait on the Hub
export AUDIO_THINKER_CACHE=${AUDIO_THINKER_CACHE:-/tmp/audio_thinker_cache}
START=$SECONDS

left() { echo $((BUDGET_S - (SECONDS - START))); }

# stage NAME MIN_SECONDS COMMAND...: run COMMAND within the time left, unless less than MIN_SECONDS is left.
stage() {
    local name=$1 need=$2 t
    shift 2
    t=$(left)
    if ((t < need)); then
        echo "== $name: skipped, $t s left (needs $need)"
        return
    fi
    echo "== $name: $(date -u +%T), up to $t s: $*"
    local begin=$SECONDS rc=0
    timeout --kill-after=15 "$t" "$@" || rc=$?
    echo "== $name: exit $rc after $((SECONDS - begin)) s$( ((rc == 124 || rc == 137)) && echo ' (timed out)')"
    collect
}

install_wheels() {
    local wheels=() w name
    for w in .whl/*.whl; do
        name=$(basename "$w" | cut -d- -f1 | tr 'A-Z_' 'a-z-')
        if [[ $IF_MISSING == *" $name "* ]] && python3 -c "import importlib.metadata as m; m.version('$name')" 2>/dev/null; then
            echo "image has $name: its copy is kept"
            continue
        fi
        wheels+=("$w")
    done
    if python3 -m pip --version >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}"
    else # no pip in the image: a wheel is a zip archive laid out for site-packages
        for w in "${wheels[@]}"; do python3 -m zipfile -e "$w" "$SITE" || return 1; done
    fi
}

# collect: the results JSON of every stage that finished, into $OUT (after each stage: a later one may time out).
collect() {
    local name
    for name in paper-cuda-7b paper-cuda whisper-large-cuda; do
        [[ -f tools/bench/results/$name.json ]] && cp "tools/bench/results/$name.json" "$OUT/"
    done
    return 0
}

versions() {
    python3 - <<'EOF'
import importlib.metadata as m
import torch
names = ["torch", "transformers", "tokenizers", "huggingface_hub", "safetensors", "accelerate", "peft", "lightning",
         "bitsandbytes", "trl", "datasets", "hydra-core", "omegaconf", "torchaudio", "soundfile", "numpy"]
for name in names:
    try:
        print(f"{name} {m.version(name)}")
    except m.PackageNotFoundError:
        print(f"{name} not installed")
print(f"cuda {torch.version.cuda}, {torch.cuda.get_device_name()}, bf16 {torch.cuda.is_bf16_supported()}")
import bitsandbytes.functional as F  # the CUDA 13 library loads, and NF4 round-trips on the GPU
x = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
q, state = F.quantize_4bit(x, quant_type="nf4")
print(f"bitsandbytes NF4 round trip, mean abs error {(F.dequantize_4bit(q, state) - x).abs().mean():.3f}")
EOF
}

main() {
    echo "== gpu_check: $(date -u), budget $BUDGET_S s, rounds $ROUNDS, 7B steps $STEPS_7B"
    nvidia-smi
    [[ -d .whl ]] || echo "== no .whl/ here: run tools/gpu_wheels.sh and carry .whl"
    install_wheels || echo "== wheel install failed: the image's packages are used as they are"
    export PYTHONPATH=$SITE:$PWD
    versions || echo "== version/bitsandbytes check failed (see above)"
    local trl=() err
    if ! err=$(python3 -c "from trl import GRPOTrainer" 2>&1); then # datasets needs pandas + pyarrow from the image
        echo "== TRL does not import ($(tail -n 1 <<<"$err")): the comparison runs without it"
        trl=(--trl "")
    fi
    local bench=(python3 tools/bench_step.py --preset paper --device cuda --cpu -1 --warmup 1)
    local variants=hf,merged
    if [[ -n ${VLLM_VENV:-} && -x $VLLM_VENV/bin/python ]]; then
        export AUDIO_THINKER_VLLM_VENV=$VLLM_VENV
        variants+=,vllm
    else
        echo "== no VLLM_VENV: the vLLM sidecar variant is skipped"
    fi
    stage "7B QLoRA absolute ($variants)" 200 "${bench[@]}" --skip-text --audio none --steps "$STEPS_7B" \
        --absolute-variants "$variants" --memory-cap-gib 24 --name paper-cuda-7b
    stage "paper comparison" 120 "${bench[@]}" --audio none --skip-absolute --rounds "$ROUNDS" --steps 1 \
        ${trl[@]+"${trl[@]}"} --name paper-cuda
    stage "whisper-large comparison" 60 "${bench[@]}" --skip-text --audio whisper-large --skip-absolute \
        --rounds "$ROUNDS" --steps 1 --name whisper-large-cuda
    stage "gpu test" 120 python3 -m pytest -m gpu tests/unit/tools/test_bench_runs.py -q -s
    ls -l "$OUT"
    echo "== gpu_check: done after $((SECONDS - START)) s"
}

mkdir -p "$OUT"
main 2>&1 | tee "$OUT/log.txt"
