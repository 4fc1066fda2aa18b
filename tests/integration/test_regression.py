"""Fixed-seed regression of the default run's first steps, that holds on any CPU.

Sampling is where CPUs part ways: a last-bit difference in one logit flips a sampled token, and every number after
it changes. So the completions are recorded once (tests/assets/regression/<name>.json, from the shipped model) and
*replayed* here by a rollout engine that returns them instead of sampling: every step then scores, weighs and
trains on the same tokens, and what is compared is the step's own arithmetic (rewards, loss, KL), with tolerances
that different kernels need (measured: `TOLERANCE`). A real change to that arithmetic still fails:
`test_a_one_line_change_to_the_loss_fails_the_comparison`.

Re-record after a change that is meant to move these numbers (a new shipped model, a new recipe):

    python -m tests.integration.test_regression --record
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from audio_thinker.losses.grpo import GRPOLoss
from audio_thinker.rollout import engine_registry as engines
from audio_thinker.rollout.engine import Completions, HFEngine, RolloutEngine
from audio_thinker.train import build_module, build_trainer

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "regression"
METRICS = ("reward/total", "loss/total", "loss/kl", "loss/policy")
# 3 steps, seed 0, B=2, G=4, 48 new tokens, 8 synthetic examples, the recipe's settings. `dapo_kl` covers the frozen
# reference copy, the KL term and token-level aggregation; `lora` the adapter-off reference.
CONFIGS = {
    "dapo_kl": ["loss=dapo", "loss.beta=0.04"],
    "lora": ["quant=lora"],
}
BASE = ["trainer.max_steps=3", "rollout.group_size=4", "rollout.max_new_tokens=48"]
# Rewards depend only on the replayed text: exact. Loss and KL go through every kernel of a forward, backward and
# Adam step: recorded with AVX-512 kernels, replayed with ATEN_CPU_CAPABILITY=default / avx2 and with
# MKL_ENABLE_INSTRUCTIONS=AVX2 they differed by at most 3.4e-5 relative (the LoRA run's KL; the rest below 2e-5),
# so 1e-3 leaves ~30x room, while a change to the step moves them by percents.
TOLERANCE = {
    "reward/total": (0.0, 1e-9),
    "loss/total": (1e-3, 1e-6),
    "loss/kl": (1e-3, 1e-7),
    "loss/policy": (1e-3, 1e-6),
}


class StepRecorder(L.Callback):
    """The step's metrics after every optimizer step."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.rows.append({name: float(trainer.callback_metrics[name]) for name in METRICS})


class RecordingEngine(HFEngine):
    """Samples as the default engine does, and keeps every generation's token ids."""

    generations: list[torch.Tensor] = []

    def generate(self, policy, request) -> Completions:
        completions = super().generate(policy, request)
        type(self).generations.append(completions.ids.clone())
        return completions


class ReplayEngine(RolloutEngine):
    """Returns the recorded token ids of each generation in turn instead of sampling."""

    generations: list[torch.Tensor] = []

    def generate(self, policy, request) -> Completions:
        ids = type(self).generations.pop(0)
        assert ids.shape[0] == len(request.prompts) * request.group_size, "recorded for other prompts"
        return Completions(ids.to(policy.device))


def run_steps(train_cfg, name: str, engine: str) -> list[dict[str, float]]:
    """The config's first steps with `rollout.engine=engine`; the metrics of each step."""
    cfg = train_cfg([*BASE, *CONFIGS[name], f"rollout.engine={engine}"])
    with open_dict(cfg):
        cfg.callbacks, cfg.logger, cfg.validation = None, None, None
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module, trainer = build_module(cfg), build_trainer(cfg)
    recorder = StepRecorder()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=datamodule)
    return recorder.rows


def recorded(name: str) -> dict:
    return json.loads((ASSETS / f"{name}.json").read_text())


def mismatches(got: list[dict[str, float]], want: list[dict[str, float]]) -> list[str]:
    """Every step and metric outside `TOLERANCE`, described."""
    out = []
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        for metric, (rel, abs_) in TOLERANCE.items():
            if g[metric] != pytest.approx(w[metric], rel=rel, abs=abs_):
                out.append(f"step {step} {metric}: {g[metric]!r} != recorded {w[metric]!r}")
    return out


@pytest.fixture
def replay(monkeypatch):
    """`rollout.engine=replay` returns the completions of `load(name)` in order."""
    monkeypatch.setitem(engines.ENGINES, "replay", ReplayEngine)

    def load(name: str) -> None:
        ReplayEngine.generations = [torch.tensor(ids) for ids in recorded(name)["completions"]]

    return load


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_first_steps_on_recorded_completions_match_the_recorded_values(train_cfg, replay, name):
    replay(name)
    got = run_steps(train_cfg, name, "replay")
    assert not ReplayEngine.generations, "every recorded generation is used"
    assert not mismatches(got, recorded(name)["steps"])


def test_a_one_line_change_to_the_loss_fails_the_comparison(train_cfg, replay, monkeypatch):
    # k1 instead of k3: logπ - logπ_ref, the "one line" of GRPOLoss.kl_per_token someone might change.
    monkeypatch.setattr(GRPOLoss, "kl_per_token", lambda self, logps, ref_logps: logps - ref_logps)
    replay("dapo_kl")
    problems = mismatches(run_steps(train_cfg, "dapo_kl", "replay"), recorded("dapo_kl")["steps"])
    assert any("loss/kl" in p for p in problems), problems
    assert not any("reward/total" in p for p in problems)  # the same completions, the same rewards


def record(output_dir: Path) -> None:
    """Sample every config with the default engine and write its completions and step metrics."""
    from tests.helpers.configs import compose_train

    engines.ENGINES["record"] = RecordingEngine  # a script of its own (`--record`), not a test: nothing to restore
    ASSETS.mkdir(parents=True, exist_ok=True)
    for name in CONFIGS:
        RecordingEngine.generations = []
        rows = run_steps(lambda overrides, n=name: compose_train(output_dir / n, overrides), name, "record")
        data = {"overrides": [*BASE, *CONFIGS[name]], "completions": [g.tolist() for g in RecordingEngine.generations]}
        (ASSETS / f"{name}.json").write_text(json.dumps({**data, "steps": rows}, indent=1) + "\n")
        print(name, rows)


if __name__ == "__main__" and "--record" in sys.argv:
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        record(Path(tmp))
