"""Every experiment preset and reward suite composes and runs a step on the embedded tiny model."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from audio_thinker.train import train
from tests.helpers.configs import CONFIGS
from tests.helpers.runs import run_cli
from tests.helpers.tb import read_scalars, scalar_tags

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
# Shrink a real-size preset to the tiny model on synthetic data, on the CPU (what the preset sets is kept).
TINY = [
    "data=synthetic",
    "data.batch_size=2",
    "data.train.size=4",
    "data.val.size=2",
    "trainer.accelerator=cpu",
    "trainer.max_steps=1",
    "trainer.accumulate_grad_batches=1",
    "rollout.group_size=2",
    "rollout.max_new_tokens=8",
    "callbacks.model_checkpoint=null",
]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_preset_runs_a_step(experiment, train_cfg, tmp_path):
    tiny_model = "tiny_qwen2_5_omni" if "omni" in experiment else "tiny_qwen2_audio"  # the preset's family
    cfg = train_cfg([f"experiment={experiment}", f"model={tiny_model}", *TINY])
    assert cfg.rollout.group_size == 2 and cfg.loss.beta == 0.04 and cfg.optimizer.lr == 1.0e-6  # paper values kept
    if "judge_think" in cfg.reward.terms:  # the paper's judge is an 8B model: use the embedded one here
        for term in ("judge_think", "judge_consistency"):
            cfg.reward.terms[term].judge.model_path = None
    train(cfg)
    assert read_scalars(tmp_path / "tensorboard", "reward/total")


@pytest.mark.parametrize(
    ("suite", "prompt", "terms"),
    [
        ("cesar", "think", {"accuracy", "format", "consistency", "keywords", "overthinking"}),
        ("audio_thinker", "adaptive", {"adaptive_think_accuracy", "format", "judge_consistency", "judge_think"}),
    ],
)
def test_reward_suite_logs_every_term_on_the_embedded_default(suite, prompt, terms, train_cfg, tmp_path):
    cfg = train_cfg([f"reward={suite}", f"prompt={prompt}", "trainer.max_steps=2", "callbacks.model_checkpoint=null"])
    assert set(instantiate(cfg.reward).terms) == terms
    train(cfg)
    tags = scalar_tags(tmp_path / "tensorboard")
    assert {f"reward/{t}" for t in terms if t != "judge_think"} <= tags and "think/rate" in tags
    if suite == "audio_thinker":
        assert {"judge/calls", "judge/failures", "judge/parse_failures", "judge/seconds"} <= tags
        # A judge term's value is logged only when something was judged (nobody reasons: no judge_think value).
        judged = sum(value for _, value in read_scalars(tmp_path / "tensorboard", "judge/calls"))
        assert ("reward/judge_think" in tags) == (judged > 0)


@pytest.mark.slow  # fast path of -m: test_cli's beta sweep (one log directory per run)
def test_multirun_over_reward_suites_and_a_weight(tmp_path):
    from tests.helpers.configs import FAST, FAST_SYNTHETIC

    result = run_cli(
        "train",
        "-m",
        *FAST,
        *FAST_SYNTHETIC,
        "reward=rlvr,cesar",
        "reward.terms.format.weight=0,1",
        f"hydra.sweep.dir={tmp_path}",
        "callbacks.model_checkpoint=null",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name[0].isdigit())
    weights_then_suites = [(0, "rlvr"), (1, "rlvr"), (0, "cesar"), (1, "cesar")]  # the last key varies fastest
    assert [p.name for p in runs] == [
        f"{i}_reward.terms.format.weight={w},reward={r}" for i, (w, r) in enumerate(weights_then_suites)
    ]
    for run in runs:
        assert read_scalars(run / "tensorboard", "reward/format"), run
    assert "reward/keywords" in scalar_tags(runs[-1] / "tensorboard")  # the cesar runs come last
