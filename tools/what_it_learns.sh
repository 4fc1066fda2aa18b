#!/usr/bin/env bash
# The "What it learns" runs (docs/what-it-learns.md) on the embedded default, one after another, with their plots
# and tables:
#
#     bash tools/what_it_learns.sh [OUT]        # default OUT: runs/what-it-learns; ~20 minutes on a 2-core CPU
#
#   learning.png      the default run, and the same run with its audio silenced or shuffled (val/accuracy)
#   overthinking.png  reward=rlvr (the default) vs reward=cesar: think/length and val/accuracy
#   adaptive.png      reward=audio_thinker prompt=adaptive: think/rate_by_difficulty/<d>
#   scaling.png       audio-thinker eval of the untrained and the trained model over a reasoning-budget grid
#   sweep/summary.*   a -m sweep of CESAR's overthinking weight, summarised by tools/summarize_sweep.py
set -euo pipefail
OUT=${1:-runs/what-it-learns}
TOOLS=$(dirname "$0")
BUDGETS='eval.budgets=[0,2,4,8,12,16,24]'
train() { audio-thinker train "$@"; }

train hydra.run.dir="$OUT/listening"
train data.audio_control=silence hydra.run.dir="$OUT/silence"
train data.audio_control=shuffle hydra.run.dir="$OUT/shuffle"
python "$TOOLS/plot_runs.py" listening="$OUT/listening" silence="$OUT/silence" shuffle="$OUT/shuffle" \
    --tags val/accuracy reward/accuracy --out "$OUT/learning.png"

train reward=cesar hydra.run.dir="$OUT/cesar"
python "$TOOLS/plot_runs.py" rlvr="$OUT/listening" cesar="$OUT/cesar" --tags think/length val/accuracy --smooth 5 \
    --out "$OUT/overthinking.png"

train reward=audio_thinker prompt=adaptive hydra.run.dir="$OUT/adaptive"
python "$TOOLS/plot_runs.py" adaptive="$OUT/adaptive" --tags 'think/rate_by_difficulty/*' val/accuracy --smooth 5 \
    --out "$OUT/adaptive.png"

audio-thinker eval "$BUDGETS" hydra.run.dir="$OUT/eval-untrained"
audio-thinker eval "$BUDGETS" eval.ckpt_path="$OUT/listening/checkpoints/last.ckpt" hydra.run.dir="$OUT/eval-trained"
python "$TOOLS/compare_scaling.py" untrained="$OUT/eval-untrained" trained="$OUT/eval-trained" --out "$OUT/scaling.png"

train -m reward=cesar reward.terms.overthinking.weight=0,1,4 hydra.sweep.dir="$OUT/sweep"
python "$TOOLS/summarize_sweep.py" "$OUT/sweep"
