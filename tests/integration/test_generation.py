"""One rollout per generation: accumulation, reuse and DDP give the numbers of the step they stand for.

- A step of 2 accumulated micro-batches has the gradient, λ and judge-style batch mean of the same step run as one
  micro-batch of twice the size (both generate the same 4 prompts at once, from the same seed).
- μ = 2 makes two passes over every example it draws: nothing fetched is dropped.
- Under DDP a rank whose whole batch was skipped, or whose loss is NaN, neither crashes nor hangs the others.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.train import build_module, build_trainer
from tests.helpers.configs import FAST, FAST_SYNTHETIC
from tests.helpers.rewards import LENGTH_REWARD, StepStatsSpy
from tests.helpers.runs import run_cli

SPY = [
    "~reward.terms.format",
    "~reward.terms.accuracy",
    "+reward.terms.spy._target_=tests.helpers.rewards.StepStatsSpy",
]


class GradientRecorder(L.Callback):
    """The summed gradients each optimizer step applies (before clipping)."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters() if p.grad is not None}
        self.steps.append(grads)


def _one_step(train_cfg, overrides: list[str]) -> tuple[GradientRecorder, list[dict]]:
    cfg = train_cfg(
        ["trainer.max_steps=1", "rollout.max_new_tokens=16", "callbacks.model_checkpoint=null", *SPY, *overrides]
    )
    StepStatsSpy.seen = []
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module, trainer = build_module(cfg), build_trainer(cfg)
    recorder = GradientRecorder()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=datamodule)
    return recorder, StepStatsSpy.seen


@pytest.mark.parametrize("loss", ["dapo", "grpo"])
def test_two_accumulated_micro_batches_equal_one_batch_of_twice_the_size(train_cfg, loss):
    split, split_stats = _one_step(
        train_cfg, [f"loss={loss}", "data.batch_size=2", "trainer.accumulate_grad_batches=2"]
    )
    whole, whole_stats = _one_step(train_cfg, [f"loss={loss}", "data.batch_size=4"])
    # Scored once for the whole step (4 prompts x G=2), with the same step-wide λ and batch mean.
    assert len(split_stats) == len(whole_stats) == 1
    assert split_stats == whole_stats and split_stats[0]["completions"] == 8
    assert len(split.steps) == len(whole.steps) == 1
    (got,), (want,) = split.steps, whole.steps
    assert got.keys() == want.keys() and got
    for name in want:
        assert torch.allclose(got[name], want[name], rtol=1e-4, atol=1e-7), name


def test_reuse_makes_two_passes_over_every_example_it_draws(train_cfg):
    cfg = train_cfg(
        [
            "rollout.num_iterations=2",
            "trainer.max_steps=8",
            "data.train.size=8",
            *LENGTH_REWARD,
            "callbacks.model_checkpoint=null",
        ]
    )
    ids = _ids_reaching_the_loss(cfg)
    assert ids[0::2] == ids[1::2]  # each micro-batch twice in a row (one micro-batch per generation)
    assert sorted(i for batch in ids[0::2] for i in batch) == sorted(SyntheticAudioQA(size=8)[i].id for i in range(8))


def test_a_generation_of_two_steps_reused_twice_serves_its_micro_batches_in_order(train_cfg):
    cfg = train_cfg(
        [
            "rollout.num_iterations=2",
            "rollout.steps_per_generation=2",
            "trainer.max_steps=4",
            "data.train.size=8",
            *LENGTH_REWARD,
            "callbacks.model_checkpoint=null",
        ]
    )
    ids = _ids_reaching_the_loss(cfg)
    assert len(ids) == 4 and ids[0] != ids[1]
    assert ids[2:] == ids[:2]  # pass 2 repeats micro-batches 0 and 1 of the same generation


def _ids_reaching_the_loss(cfg) -> list[list[str]]:
    module, trainer = build_module(cfg), build_trainer(cfg)
    seen: list[list[str]] = []
    original = module.micro_batch

    def recording(batch, micro_step):
        micro = original(batch, micro_step)
        seen.append([ex.id for ex in micro.examples])
        return micro

    module.micro_batch = recording
    trainer.fit(module, datamodule=instantiate(cfg.data))
    return seen


DDP = [
    *FAST,
    *FAST_SYNTHETIC,
    "strategy=ddp",
    "trainer.devices=2",
    "optimizer.lr=1e-2",
    *LENGTH_REWARD,
    "callbacks.model_checkpoint=null",
    "data.batch_size=1",
    "+callbacks.fingerprint._target_=tests.helpers.fingerprint.WeightFingerprint",
]


def _logs(run_dir) -> str:
    """Every rank's log file (Hydra writes `train.log`, Lightning's workers `train_ddp_process_<r>.log`)."""
    return "".join(path.read_text() for path in sorted(run_dir.glob("*.log")))


def _fingerprints(tmp_path):
    return [torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1)]


@pytest.mark.slow  # fast paths: the NaN-loss DDP test below, and test_reward's rank with nothing to score
def test_ddp_with_one_ranks_whole_batch_skipped_trains_on_without_hanging(tmp_path):
    # DistributedSampler's order for seed 0, epoch 0: rank 1 draws order[1] first; that item is broken.
    order = torch.randperm(8, generator=torch.Generator().manual_seed(0)).tolist()
    result = run_cli(
        "train",
        *DDP,
        "trainer.max_steps=2",
        "data.on_error=skip",
        f"hydra.run.dir={tmp_path}",
        "data.train._target_=tests.helpers.data.PartlyBrokenSynthetic",
        f"+data.train.bad=[{order[1]}]",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"item {order[1]} is broken on purpose" in _logs(tmp_path)  # the skip was logged by rank 1
    rank0, rank1 = _fingerprints(tmp_path)
    assert rank0["step"] == rank1["step"] == 2
    assert rank0["initial"] != rank0["final"] and rank0["final"] == rank1["final"]
    assert len(rank0["examples"]) == 2 and len(rank1["examples"]) == 1  # rank 1 had nothing at step 0


def test_ddp_with_a_nan_loss_on_one_rank_skips_the_step_on_every_rank(tmp_path):
    nan_on_rank_1 = ["+callbacks.nan._target_=tests.helpers.callbacks.NaNLossOnRank", "+callbacks.nan.rank=1"]
    result = run_cli("train", *DDP, "trainer.max_steps=1", f"hydra.run.dir={tmp_path}", *nan_on_rank_1)
    assert "non-finite loss (nan); the step is skipped" in _logs(tmp_path)
    # Its only step skipped, the run trained nothing: it says so and fails (NothingTrainedError), on every rank.
    assert result.returncode != 0 and "none of the 1 optimizer step(s) changed the weights" in result.stderr
    rank0, rank1 = _fingerprints(tmp_path)
    assert rank0["step"] == rank1["step"] == 1  # the step counted...
    assert rank0["initial"] == rank0["final"] == rank1["final"]  # ...but no weight moved on either rank
