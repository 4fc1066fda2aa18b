"""Does the default run learn on any CPU? `audio-thinker train` from the shipped model, over training seeds and torch
kernel settings, with the silenced-audio control; prints the table docs/reproducibility.md reports.

    python tools/learning_matrix.py [--out runs/learning-matrix] [--seeds 0 1 2] [--jobs 2]

Each row is one run of the default recipe (60 steps, 4 validations), one torch thread each, `--jobs` at a time.
The kernel settings make torch compute as other CPUs do: `ATEN_CPU_CAPABILITY` picks the vectorised kernels
(`default` is scalar code; `avx512` only where this CPU has it), `MKL_ENABLE_INSTRUCTIONS=AVX2` makes MKL's matrix
products take the path they take on CPUs without AVX-512 (as on AMD's). ~30 minutes on 2 cores for the full matrix.
A run learns when its last `val/accuracy` is >= 0.8; the silence control must end at chance (<= 0.6).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: plot_runs beside it
from plot_runs import read_run  # noqa: E402

LEARNED, CHANCE = 0.8, 0.6
AUDIO_THINKER = [sys.executable, "-c", "from audio_thinker.cli import main; main()"]  # this interpreter's install
KERNELS = {  # label -> environment
    "native": {},
    "ATEN default": {"ATEN_CPU_CAPABILITY": "default"},
    "ATEN avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATEN avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "MKL AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def kernels_here() -> dict[str, dict[str, str]]:
    """The kernel settings this CPU can run (avx512 only where torch found AVX-512)."""
    has_avx512 = torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return {label: env for label, env in KERNELS.items() if has_avx512 or env.get("ATEN_CPU_CAPABILITY") != "avx512"}


def run(out: Path, kernel: str, seed: int, control: str | None) -> dict:
    """One default run; its val/accuracy curve and seconds."""
    name = f"{kernel.replace(' ', '-')}-seed{seed}" + (f"-{control}" if control else "")
    run_dir = out / name
    overrides = [f"seed={seed}", f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false"]
    overrides += [f"data.audio_control={control}"] if control else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", **KERNELS[kernel]}
    start = time.perf_counter()
    with (out / f"{name}.log").open("w") as log:
        code = subprocess.call([*AUDIO_THINKER, "train", *overrides], env=env, stdout=log, stderr=subprocess.STDOUT)
    curve = read_run(run_dir / "tensorboard").get("val/accuracy", []) if code == 0 else []
    return {
        "name": name,
        "kernel": kernel,
        "seed": seed,
        "control": control,
        "curve": [v for _, v in curve],
        "seconds": time.perf_counter() - start,
        "exit": code,
    }


def verdict(row: dict) -> str:
    if row["exit"] or not row["curve"]:
        return f"failed (exit {row['exit']})"
    last = row["curve"][-1]
    if row["control"]:
        return "at chance" if last <= CHANCE else "ABOVE CHANCE"
    return "learns" if last >= LEARNED else "DOES NOT LEARN"


def table(rows: list[dict]) -> str:
    lines = [
        "| kernels | seed | audio | val/accuracy, step 0 -> 20 -> 40 -> 60 | verdict | minutes |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        curve = " -> ".join(f"{v:.2f}" for v in row["curve"]) or "-"
        audio = row["control"] or "the clip"
        lines.append(
            f"| {row['kernel']} | {row['seed']} | {audio} | {curve} | {verdict(row)} | {row['seconds'] / 60:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/learning-matrix"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--kernels", nargs="+", choices=sorted(KERNELS), default=None, help="default: all this CPU runs"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    kernels = args.kernels or list(kernels_here())
    jobs = [(k, s, None) for k in kernels for s in args.seeds] + [(k, args.seeds[0], "silence") for k in kernels]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: run(args.out, *job), jobs))
    text = table(rows)
    (args.out / "table.md").write_text(text + "\n")
    print(text)
    return 0 if all(verdict(r) in ("learns", "at chance") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
