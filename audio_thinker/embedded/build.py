"""`audio-thinker build-models`: train the embedded models, check each, and write them as the package's files.

Each model is trained from its recipe (`format_warm_start`; `listening` and `hearing`), then checked on held-out
examples (`checks`). The audio model trains on, a round at a time, until it passes (it hears every task and level,
and its answers are still at chance) or the rounds run out, which stops the build with the scores it reached: a
model that fails its check is never written. Rebuilding on another machine may give other bytes (other
arithmetic, another trajectory), never a model that fails.

The models are written with `save_pretrained` into a staging directory beside `--out`, with `manifest.json`
(every file's SHA-256, the check scores, the steps trained, the machine and library versions), then swapped into
place, so a failed or killed build leaves the previous models untouched.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from audio_thinker.embedded.architecture import (
    OMNI_AUDIO_SECONDS,
    build_model,
    build_omni_thinker,
    build_processor,
    build_text_model,
    build_tokenizer,
)
from audio_thinker.embedded.checks import CheckReport, check_format_model, check_listening_model
from audio_thinker.embedded.format_warm_start import warm_start
from audio_thinker.embedded.hearing import teach_hearing
from audio_thinker.embedded.listening import (
    DIFFICULTIES,
    LISTENING_TASKS,
    ListeningSchedule,
    teach_listening,
    teach_reasoning,
)
from audio_thinker.models.embedded_files import MANIFEST, NAMES, sha256_of, shipped_root
from audio_thinker.models.families import family_of
from audio_thinker.models.policy import Policy
from audio_thinker.models.processors import AudioTextProcessor

log = logging.getLogger(__name__)


class BuildCheckFailed(RuntimeError):
    """A model that did not pass its check after every round of training it was allowed."""


@dataclass(frozen=True)
class Built:
    """A trained and checked model, ready to save."""

    policy: Policy
    report: CheckReport
    steps: dict[str, int]


def _policy(model, processor) -> Policy:
    model.train()
    return family_of(model.config.model_type).policy_class(model, processor)


def _checked(policy: Policy, check: Callable[[Policy], CheckReport]) -> CheckReport:
    policy.hf_model.eval()
    try:
        return check(policy)
    finally:
        policy.hf_model.train()


def build_listening_model(seed: int = 0, schedule: ListeningSchedule | None = None) -> Built:
    """The default run's Qwen2-Audio: reasons in text, then hears and listens, round after round, until it passes its
    check (`checks.check_listening_model`)."""
    schedule = schedule or ListeningSchedule()
    tokenizer = build_tokenizer()
    policy = _policy(build_model(tokenizer, seed=seed), build_processor(tokenizer))
    torch.manual_seed(seed)
    steps = {"reasoning": len(teach_reasoning(policy, steps=schedule.reasoning_steps, seed=seed))}
    steps |= {"hearing": 0, "listening": 0}
    for round_ in range(schedule.max_rounds):
        first = round_ == 0
        round_seed = seed + 1000 * round_  # fresh clips and draws each round
        hearing = schedule.hearing_steps if first else schedule.more_hearing_steps
        steps["hearing"] += len(teach_hearing(policy, steps=hearing, seed=round_seed))
        listening = schedule.listening_steps if first else schedule.more_listening_steps
        steps["listening"] += len(
            teach_listening(policy, steps=listening, hesitant_steps=schedule.hesitant_steps, seed=round_seed)
        )
        report = _checked(policy, lambda p: check_listening_model(p, LISTENING_TASKS, DIFFICULTIES))
        log.info("tiny-qwen2-audio round %d (%s): %s", round_ + 1, steps, report.summary())
        if report.passed:
            return Built(policy, report, steps)
    raise BuildCheckFailed(
        f"tiny-qwen2-audio (seed {seed}) did not pass its check after {schedule.max_rounds} rounds ({steps}): "
        f"{report.summary()}. Nothing was written; try another --seed, or more rounds (ListeningSchedule)"
    )


def build_format_model(name: str, seed: int = 0, steps: int = 150) -> Built:
    """The text-only Qwen2 (`tiny-qwen2`) or the Qwen2.5-Omni thinker, warm-started on the output format."""
    tokenizer = build_tokenizer()
    if name == "tiny-qwen2_5-omni":
        model = build_omni_thinker(tokenizer, seed=seed)
        processor = AudioTextProcessor(tokenizer, build_processor(tokenizer, OMNI_AUDIO_SECONDS).feature_extractor)
    else:
        model, processor = build_text_model(tokenizer, seed=seed), tokenizer
    policy = _policy(model, processor)
    torch.manual_seed(seed)
    trained = {"format": len(warm_start(policy, steps=steps, seed=seed))}
    report = _checked(policy, check_format_model)
    if not report.passed:
        raise BuildCheckFailed(f"{name} (seed {seed}) did not pass its check: {report.summary()}. Nothing was written")
    return Built(policy, report, trained)


BUILDERS: dict[str, Callable[[int], Built]] = {
    "tiny-qwen2-audio": build_listening_model,
    "tiny-qwen2": lambda seed: build_format_model("tiny-qwen2", seed),
    "tiny-qwen2_5-omni": lambda seed: build_format_model("tiny-qwen2_5-omni", seed),
}


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """Where a model was built: CPU, Python and the libraries that decide its arithmetic."""
    import transformers

    return {
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def save(built: Built, directory: Path) -> dict:
    """Write a model and its processor; return its manifest entry."""
    built.policy.hf_model.eval()
    built.policy.processor.save_pretrained(directory)
    built.policy.hf_model.save_pretrained(directory)
    files = {p.relative_to(directory).as_posix(): sha256_of(p) for p in sorted(directory.rglob("*")) if p.is_file()}
    return {"files": files, "check": built.report.scores, "bars": built.report.bars, "steps": built.steps}


def build_models(out: Path, names: tuple[str, ...] = NAMES, seed: int = 0) -> dict:
    """Build, check and write `names` into `out` (models not named keep their files and manifest entries)."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=out.parent))
    try:
        old = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).is_file() else {"models": {}}
        manifest = {"models": {k: v for k, v in old["models"].items() if k not in names}}
        for name in manifest["models"]:
            shutil.copytree(out / name, staging / name)
        for name in names:
            start = time.perf_counter()
            built = BUILDERS[name](seed)
            manifest["models"][name] = {
                **save(built, staging / name),
                "seed": seed,
                "machine": machine(),
                "seconds": round(time.perf_counter() - start),
            }
            log.info("%s: %s (%.0f s)", name, built.report.summary(), time.perf_counter() - start)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _swap(staging: Path, out: Path) -> None:
    """Replace `out`'s contents with `staging`'s (two renames; the old copy is removed last)."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def build_models_main(argv: list[str]) -> int:
    """`audio-thinker build-models`: the console command."""
    parser = argparse.ArgumentParser(prog="audio-thinker build-models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=shipped_root(), help="directory to write (default: the package's)")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), help="models to rebuild")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and data-order seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the result does not depend on the count
    progress = logging.StreamHandler()  # the rounds' scores, for the length of the command only
    progress.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(progress)
    log.setLevel(logging.INFO)
    try:
        manifest = build_models(args.out, tuple(args.only), args.seed)
    except BuildCheckFailed as err:
        print(f"audio-thinker build-models: {err}")
        return 1
    finally:
        log.removeHandler(progress)
    for name in args.only:
        entry = manifest["models"][name]
        print(f"{name}: {', '.join(f'{k} {v:.2f}' for k, v in entry['check'].items())} ({entry['seconds']} s)")
    print(f"wrote {args.out}")
    return 0
