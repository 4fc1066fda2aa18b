import math

import pytest
import torch

from audio_thinker.losses.grpo import GRPOLoss


def test_on_policy_beta_zero_is_minus_mean_advantage():
    # ratio = 1 everywhere (no old logps): per-token loss = -A_i; the grpo mean over sequences is -mean(A).
    logps = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -0.5]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv = torch.tensor([2.0, -1.0])
    out = GRPOLoss(beta=0.0)(logps, adv, mask)
    assert out.loss.item() == pytest.approx(-(2.0 - 1.0) / 2)
    assert out.kl.item() == 0.0 and out.clip_fraction.item() == 0.0
    out.loss.backward()
    # d loss / d logp_it = -A_i / (n_i * N) on unmasked tokens, 0 on padding.
    expected = torch.tensor([[-2.0 / 4, -2.0 / 4, 0.0], [1.0 / 6, 1.0 / 6, 1.0 / 6]])
    assert torch.allclose(logps.grad, expected)


def test_k3_kl_hand_computed():
    # delta = ref - pi = log(2) for the one token: k3 = 2 - log 2 - 1 = 0.30685
    logps = torch.tensor([[0.0]])
    ref = torch.tensor([[math.log(2.0)]])
    out = GRPOLoss(beta=0.1)(logps, torch.tensor([0.0]), torch.ones(1, 1), ref_logps=ref)
    k3 = 2 - math.log(2) - 1
    assert out.kl.item() == pytest.approx(k3, abs=1e-6)
    assert out.loss.item() == pytest.approx(0.1 * k3, abs=1e-6)


def test_clipping_is_active_and_counted():
    # ratios e^0.5 = 1.6487 (A>0: clipped to 1.2) and e^-0.5 = 0.6065 (A<0: clipped to 0.8), and 1.0.
    old = torch.zeros(1, 3)
    logps = torch.tensor([[0.5, -0.5, 0.0]], requires_grad=True)
    # one sequence, one advantage: use three sequences of one token instead
    logps = logps.view(3, 1)
    old = old.view(3, 1)
    adv = torch.tensor([1.0, -1.0, 1.0])
    out = GRPOLoss(beta=0.0, epsilon=0.2)(logps, adv, torch.ones(3, 1), old_logps=old)
    # per-token: -min(1.6487, 1.2) = -1.2 ; -min(-0.6065, -0.8) = 0.8 ; -1.0   -> mean = (-1.2 + 0.8 - 1) / 3
    assert out.loss.item() == pytest.approx((-1.2 + 0.8 - 1.0) / 3, abs=1e-5)
    assert out.clip_fraction.item() == pytest.approx(2 / 3)


def test_clip_higher_uses_epsilon_high():
    logps, old = torch.tensor([[0.5]]), torch.zeros(1, 1)
    out = GRPOLoss(beta=0.0, epsilon=0.2, epsilon_high=0.28)(logps, torch.tensor([1.0]), torch.ones(1, 1), old)
    assert out.loss.item() == pytest.approx(-1.28)


def test_aggregations_weigh_tokens_differently():
    # Per-token loss = -A_i with ratio 1 and beta 0. Sequence 1: 1 token, A=1; sequence 2: 3 tokens, A=-1.
    logps = torch.zeros(2, 3)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    grpo = GRPOLoss(beta=0.0, aggregation="grpo")(logps, adv, mask).loss  # mean(-1, +1) = 0
    dapo = GRPOLoss(beta=0.0, aggregation="dapo")(logps, adv, mask).loss  # (-1 + 3) / 4 = 0.5
    dr = GRPOLoss(beta=0.0, aggregation="dr_grpo", max_completion_length=4)(logps, adv, mask).loss  # 2 / (2*4)
    assert grpo.item() == pytest.approx(0.0)
    assert dapo.item() == pytest.approx(0.5)
    assert dr.item() == pytest.approx(0.25)


def test_padding_never_contributes():
    logps = torch.tensor([[-1.0, float("nan")]])  # a NaN on a padded position must not leak
    logps = torch.nan_to_num(logps, nan=123.0)
    out = GRPOLoss(beta=0.04)(logps, torch.tensor([1.0]), torch.tensor([[1, 0]]), ref_logps=torch.tensor([[-1.0, 0.0]]))
    assert out.loss.item() == pytest.approx(-1.0)
    assert out.kl.item() == pytest.approx(0.0)


def test_bad_settings_fail_with_the_field_name():
    with pytest.raises(ValueError, match="loss.aggregation"):
        GRPOLoss(aggregation="mean")
    with pytest.raises(ValueError, match="max_completion_length"):
        GRPOLoss(aggregation="dr_grpo")
    with pytest.raises(ValueError, match="ref_logps"):
        GRPOLoss(beta=0.1)(torch.zeros(1, 1), torch.zeros(1), torch.ones(1, 1))
