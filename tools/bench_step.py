"""Step-time benchmark: our GRPO step vs TRL's GRPOTrainer vs plain-torch floors, and audio encoded once.

Every contender (ours through the real Lightning loop, TRL's GRPOTrainer as strong as a user would configure
it, a naive plain-torch loop) trains the same workload: same model, prompts of one length, B, G, forced
completion length, KL (k3, bias-corrected), fused AdamW. Each of its steps is followed by one *tight floor* step
(each prompt prefilled once, a minimal decode loop, log-prob passes that share the prompt, the LM head on
completions only) on identical shapes, and its time is read in units of that step. Every contender runs
`--rounds` times in rotating order; figures are medians over rounds with bootstrap 95% intervals, on the wall
clock and on CPU time, and a target counts as met only when its interval clears it. The harness lives in
`tools/bench/` (see its modules); results go to `tools/bench/results/<name>.json`.

    python tools/bench_step.py                          # tiny text Qwen2 + tiny audio, 10 rounds (~15 min, 2 cores)
    python tools/bench_step.py --preset paper           # 7B-shaped LM cut to --layers, LoRA + checkpointing (hours)
    python tools/bench_step.py --audio whisper-large    # encoder comparison at the real Whisper-large shape, 30 s
    python tools/bench_step.py --preset paper --device cuda   # + absolute 7B QLoRA NF4 step: time, tokens/s, memory
    python tools/bench_step.py --readme                 # rewrite docs/performance.md's tables from the saved JSONs

The last line is machine readable: `ratio_vs_trl=<x> overhead_pct=<y> encoder_calls_per_step=<n>
examples_per_step=<m> ratio_ci_high=<h> overhead_tight_pct=<t>` (ours / strongest TRL; ours vs the naive floor;
audio clips encoded per step and examples per step; the 95% interval's upper end of ours / TRL; our overhead over
the tight floor as a share of our step).
"""

from bench.cli import main  # tools/ is this script's directory, so the harness imports as `bench`

if __name__ == "__main__":
    main()
