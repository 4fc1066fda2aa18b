"""The step-time benchmark harness behind `tools/bench_step.py` (one module per concern).

- `workload`: what one step trains (presets), and the prompts every contender gets, all of one token length
- `models`: random models of real shapes (7B Qwen2-Audio language model, Whisper-large encoder), built once
- `floors`: the naive and the tight plain-torch steps, and the floor model they run on
- `ours` / `trl_runner`: our Lightning step and TRL's GRPOTrainer, each step paired with a tight-floor step
- `stats`: paired ratios per round, medians with bootstrap intervals, target checks
- `report`: the Markdown tables, the JSON results, the README table and the machine-readable last line
- `absolute`: absolute step time, tokens/s and peak memory of one configuration (the GPU run)
- `cli`: the command line
"""
