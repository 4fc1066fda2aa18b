"""GRPOModule on a stub policy, trained by a real Lightning trainer: the loss it logs, the steps it skips.

The stub's log-prob of a token is a learnable table entry (no model, no audio): the module's own logic (micro-batches
drawn from the generation, the loss, skipping a non-finite or empty step on the weights and the optimizer) is what
runs. Rollouts are built by hand with known advantages and handed over as the rollout callback hands them
(`GRPOModule.start_generation`).
"""

from __future__ import annotations

import contextlib
import logging
import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from audio_thinker.losses.grpo import GRPOLoss
from audio_thinker.module import GRPOModule, NothingTrainedError
from audio_thinker.rollout.batch import Rollout
from tests.helpers.rollouts import make_rollout

VOCAB = 5


class TablePolicy(nn.Module):
    """log π(token) = log_softmax(table)[token], whatever the prompt: the smallest trainable policy."""

    has_adapters = False

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.linspace(-1.0, 1.0, VOCAB))

    @property
    def device(self) -> torch.device:
        return self.table.device

    def completion_logps(self, encoding, completion_ids, completion_mask, temperature, reencode_audio=False):
        return torch.log_softmax(self.table / temperature, dim=-1)[completion_ids]  # [N, C]

    def audio_trainable(self) -> bool:
        return False

    def reference_context(self):
        return contextlib.nullcontext()


class HandOver(L.Callback):
    """Hands the module one scored rollout per generation, as the rollout callback does."""

    def __init__(self, rollouts: list[Rollout]) -> None:
        self.rollouts = list(rollouts)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch["micro_step"] == 0 and self.rollouts:
            pl_module.start_generation(self.rollouts.pop(0))


def items(generations: int, micro_steps: int) -> list[dict]:
    """The data loader's items: a generation's first carries its examples, the others only their position."""
    first = {"examples": ["stand-in"], "micro_step": 0, "micro_steps": micro_steps}
    rest = [{"micro_step": i, "micro_steps": micro_steps} for i in range(1, micro_steps)]
    return [item for _ in range(generations) for item in (first, *rest)]


def fit(
    rollouts: list[Rollout], loss: GRPOLoss, accumulate: int = 1, generations: int | None = None
) -> tuple[GRPOModule, L.Trainer]:
    """Train a `TablePolicy` on `rollouts` (one generation each, `accumulate` micro-batches per step) with SGD;
    `generations` more than rollouts leaves the last ones without a rollout handed over."""
    torch.manual_seed(0)
    module = GRPOModule(TablePolicy(), loss, lambda params: torch.optim.SGD(params, lr=0.5))
    micro_steps, generations = rollouts[0].num_micro_batches, generations or len(rollouts)
    loader = DataLoader(items(generations, micro_steps), batch_size=None)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=generations * micro_steps // accumulate,
        accumulate_grad_batches=accumulate,
        callbacks=[HandOver(rollouts)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return module, trainer


def test_a_step_trains_on_the_loss_of_its_rollout():
    rollout = make_rollout([3, 2, 1, 3], advantages=[1.0, -1.0, 0.5, -0.5], vocab=VOCAB)
    before = TablePolicy().table.detach().clone()
    expected = GRPOLoss(beta=0.0)(
        torch.log_softmax(before, -1)[rollout.completion_ids], rollout.advantages, rollout.completion_mask
    )
    module, trainer = fit([rollout], GRPOLoss(beta=0.0))
    assert float(trainer.callback_metrics["loss/total"]) == pytest.approx(float(expected.loss), abs=1e-6)
    assert not torch.equal(module.policy.table.detach(), before)
    assert module.trained_steps == 1 and module.nonfinite_losses == 0
    module.check_trained()  # a run that trained raises nothing


def test_accumulated_micro_batches_draw_their_share_of_the_generation():
    """Two micro-batches of one generation give the step the gradient of both halves (grpo: mean of the two)."""
    rollout = make_rollout([2, 1, 3, 1], advantages=[1.0, -1.0, 1.0, -1.0], num_micro_batches=2, vocab=VOCAB)
    whole, _ = fit([rollout], GRPOLoss(beta=0.0), accumulate=2)
    halves = []
    for index in range(2):
        micro = rollout.micro_batch(index)
        table = TablePolicy().table
        out = GRPOLoss(beta=0.0)(
            torch.log_softmax(table, -1)[micro.completion_ids], micro.advantages, micro.completion_mask
        )
        (out.loss / 2).backward()
        halves.append(table.grad)
    stepped = TablePolicy().table.detach() - 0.5 * (halves[0] + halves[1])
    assert torch.allclose(whole.policy.table.detach(), stepped, atol=1e-6)


def test_a_non_finite_loss_skips_the_step_and_a_run_of_skips_raises(caplog):
    rollout = make_rollout([2, 2], advantages=[float("nan"), 1.0], vocab=VOCAB)
    before = TablePolicy().table.detach().clone()
    with caplog.at_level(logging.WARNING, logger="audio_thinker.module"):
        module, trainer = fit([rollout], GRPOLoss(beta=0.0))
    assert torch.equal(module.policy.table.detach(), before)  # weights unchanged
    assert module.nonfinite_losses == 1 and module.trained_steps == 0
    assert float(trainer.callback_metrics["loss/nonfinite_skipped"]) == 1.0
    assert "non-finite loss" in caplog.text and "['q0']" in caplog.text
    with pytest.raises(NothingTrainedError, match="none of the 1 optimizer step"):
        module.check_trained()


def test_a_step_without_completions_is_skipped_but_not_counted_as_non_finite():
    empty = make_rollout([2, 2], advantages=[1.0, -1.0], vocab=VOCAB).select(range(0, 0))  # every example skipped
    trained = make_rollout([2, 2], advantages=[1.0, -1.0], vocab=VOCAB)
    module, _ = fit([empty, trained], GRPOLoss(beta=0.0))
    assert module.trained_steps == 1 and module.nonfinite_losses == 0


def test_the_reference_is_a_frozen_copy_only_when_the_kl_term_is_on():
    assert GRPOModule(TablePolicy(), GRPOLoss(beta=0.0), torch.optim.SGD).reference is None
    module = GRPOModule(TablePolicy(), GRPOLoss(beta=0.1), torch.optim.SGD)
    assert module.reference is not None and not any(p.requires_grad for p in module.reference.parameters())


def test_a_rollout_without_advantages_is_refused():
    unscored = make_rollout([1, 1], vocab=VOCAB)
    with pytest.raises(RuntimeError, match="the rollout has no advantages"):
        fit([unscored], GRPOLoss(beta=0.0))


def test_a_generation_must_be_handed_over_before_its_first_micro_step():
    trained = make_rollout([2, 2], advantages=[1.0, -1.0], vocab=VOCAB)
    with pytest.raises(RuntimeError, match="no rollout was handed over for this generation"):
        fit([trained], GRPOLoss(beta=0.0), generations=2)  # the second generation gets none


def test_old_policy_logps_are_the_policys_per_micro_batch_and_zero_on_padding():
    rollout = make_rollout([2, 1, 3, 1], num_micro_batches=2, vocab=VOCAB)
    module = GRPOModule(TablePolicy(), GRPOLoss(beta=0.0), torch.optim.SGD)
    old = module.old_policy_logps(rollout)
    want = torch.log_softmax(module.policy.table.detach(), -1)[rollout.completion_ids]
    assert old.shape == rollout.completion_ids.shape and not old.requires_grad
    assert torch.allclose(old[:2, :2], want[:2, :2]) and torch.allclose(old[2:, :3], want[2:, :3])
    assert old[:2, 2:].abs().sum() == 0  # the first micro-batch is 2 columns wide: beyond it nothing is computed


@pytest.mark.parametrize("enabled", [True, False])
def test_a_rollout_with_sampling_logps_is_weighted_by_the_truncated_sampler_ratio(enabled):
    """An engine's log-probs (here: the trainer's + log 4 on every token, and - log 2 on one) weight each token's
    policy loss by π_trainer / π_sampler capped at 3 (`loss.sampler_correction`), and the weights are logged."""
    from dataclasses import replace

    from audio_thinker.losses.sampler_correction import SamplerCorrection

    rollout = make_rollout([3, 2, 1, 3], advantages=[1.0, -1.0, 0.5, -0.5], vocab=VOCAB)
    trainer_logps = torch.log_softmax(TablePolicy().table.detach(), -1)[rollout.completion_ids]
    gap = torch.full_like(trainer_logps, -math.log(4.0))  # the sampler found every token 4x less likely...
    gap[0, 0] = math.log(2.0)  # ...but the first twice as likely
    rollout = replace(rollout, sampling_logps=trainer_logps + gap)
    correction = SamplerCorrection(enabled=enabled, clip_max=3.0)
    module, trainer = fit([rollout], GRPOLoss(beta=0.0, sampler_correction=correction))
    weights = torch.full_like(trainer_logps, 3.0)  # ratio 4, capped
    weights[0, 0] = 0.5
    expected = GRPOLoss(beta=0.0)(
        trainer_logps,
        rollout.advantages,
        rollout.completion_mask,
        sampler_weights=weights if enabled else None,
    )
    metrics = trainer.callback_metrics
    assert float(metrics["loss/total"]) == pytest.approx(float(expected.loss), abs=1e-6)
    assert float(metrics["rollout/logprob_mismatch"]) == pytest.approx(
        float((gap.abs() * rollout.completion_mask).sum() / rollout.completion_mask.sum()), abs=1e-6
    )
    tokens = int(rollout.completion_mask.sum())
    if enabled:
        assert float(metrics["rollout/is_ratio_mean"]) == pytest.approx((0.5 + 3.0 * (tokens - 1)) / tokens)
        assert float(metrics["rollout/is_clipped_fraction"]) == pytest.approx((tokens - 1) / tokens)
    else:
        assert "rollout/is_ratio_mean" not in metrics
