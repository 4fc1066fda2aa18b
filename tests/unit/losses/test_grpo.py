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
    dapo = GRPOLoss(beta=0.0, aggregation="dapo")(logps, adv, mask, num_tokens=4.0).loss  # (-1 + 3) / 4 = 0.5
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


def _two_sequences():
    """Per-token loss = -A_i (ratio 1, beta 0). Sequence 1: 1 token, A=1; sequence 2: 3 tokens, A=-1."""
    return torch.zeros(2, 3), torch.tensor([1.0, -1.0]), torch.tensor([[1, 0, 0], [1, 1, 1]])


def test_bnpo_is_the_local_token_mean_and_dapo_divides_by_the_steps_tokens():
    logps, adv, mask = _two_sequences()
    assert GRPOLoss(beta=0.0, aggregation="bnpo")(logps, adv, mask).loss.item() == pytest.approx(0.5)  # 2 / 4
    # The step has 8 tokens over its micro-batches and ranks: (-1 + 3) / 8.
    dapo = GRPOLoss(beta=0.0, aggregation="dapo")(logps, adv, mask, num_tokens=8.0).loss
    assert dapo.item() == pytest.approx(0.25)


def test_dapo_over_two_accumulated_micro_batches_has_the_one_batch_gradient():
    # 4 sequences with 3, 1, 2 and 1 tokens: micro-batches of 4 and 3 tokens.
    logps = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.0, 0.0], [0.5, 0.6, 0.0], [0.7, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]])
    old = torch.zeros(4, 3)
    adv = torch.tensor([1.0, -2.0, 0.5, 3.0])
    loss = GRPOLoss(beta=0.0, aggregation="dapo")
    whole = loss(logps, adv, mask, old, num_tokens=7.0).loss  # one micro-batch holding all 7 tokens
    (full_grad,) = torch.autograd.grad(whole, logps)
    # Two micro-batches of 4 and 3 tokens; Lightning divides each by accumulation=2; the normaliser is 7 / 2.
    halves = [
        loss(logps[i : i + 2], adv[i : i + 2], mask[i : i + 2], old[i : i + 2], num_tokens=3.5).loss / 2 for i in (0, 2)
    ]
    (accumulated,) = torch.autograd.grad(sum(halves), logps)
    assert torch.allclose(accumulated, full_grad)
    bnpo = GRPOLoss(beta=0.0, aggregation="bnpo")
    local = [bnpo(logps[i : i + 2], adv[i : i + 2], mask[i : i + 2], old[i : i + 2]).loss / 2 for i in (0, 2)]
    (bnpo_grad,) = torch.autograd.grad(sum(local), logps)
    assert not torch.allclose(bnpo_grad, full_grad)  # per micro-batch normalisation is a different objective


def test_sequence_level_ratio_is_the_geometric_mean_of_token_ratios():
    # One sequence of 2 tokens, log-ratios 0.2 and 0.4 -> ρ = exp(0.3) = 1.34986; A = -1, so nothing is clipped
    # (-min(-ρ, -clip(ρ)) = ρ). Token level would give (e^0.2 + e^0.4) / 2 = 1.35664 instead.
    old, adv, mask = torch.zeros(1, 2), torch.tensor([-1.0]), torch.ones(1, 2)
    results = {}
    for level in ("token", "sequence", "sequence_token"):
        logps = torch.tensor([[0.2, 0.4]], requires_grad=True)
        out = GRPOLoss(beta=0.0, importance_sampling_level=level)(logps, adv, mask, old)
        out.loss.backward()
        results[level] = (out.loss.item(), logps.grad.clone())
    rho = math.exp(0.3)
    assert results["token"][0] == pytest.approx((math.exp(0.2) + math.exp(0.4)) / 2, abs=1e-5)
    assert results["sequence"][0] == pytest.approx(rho, abs=1e-5)
    assert results["sequence_token"][0] == pytest.approx(rho, abs=1e-5)
    # d ρ / d logp_t = ρ / |y| for GSPO; GSPO-token: sg[ρ] per token, averaged over 2 tokens: also ρ / 2.
    assert torch.allclose(results["sequence"][1], torch.full((1, 2), rho / 2))
    assert torch.allclose(results["sequence_token"][1], torch.full((1, 2), rho / 2))


def test_sequence_level_ratio_is_clipped_as_one():
    # ρ = exp(0.3) = 1.34986 > 1.2 with A = 1: both tokens clipped, loss -1.2, no gradient.
    logps = torch.tensor([[0.2, 0.4]], requires_grad=True)
    out = GRPOLoss(beta=0.0, importance_sampling_level="sequence")(
        logps, torch.tensor([1.0]), torch.ones(1, 2), torch.zeros(1, 2)
    )
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-1.2)
    assert out.clip_fraction.item() == 1.0
    assert torch.equal(logps.grad, torch.zeros(1, 2))


@pytest.mark.parametrize(
    ("estimator", "expected"),
    # δ = ref - pi = log 2: k1 = -log 2, k2 = (log 2)^2 / 2, k3 = 2 - log 2 - 1
    [("k1", -math.log(2)), ("k2", math.log(2) ** 2 / 2), ("k3", 1 - math.log(2))],
)
def test_kl_estimators_hand_computed(estimator, expected):
    logps = torch.tensor([[0.0]], requires_grad=True)
    ref = torch.tensor([[math.log(2.0)]])
    out = GRPOLoss(beta=0.1, kl_estimator=estimator)(logps, torch.tensor([0.0]), torch.ones(1, 1), ref_logps=ref)
    assert out.kl.item() == pytest.approx(expected, abs=1e-6)
    out.loss.backward()
    # d/dlogπ: k1 -> 1, k2 -> -δ = -log 2, k3 -> 1 - exp(δ) = -1; times beta (the policy term's gradient is 0 at A=0)
    slope = {"k1": 1.0, "k2": -math.log(2), "k3": -1.0}[estimator]
    assert logps.grad.item() == pytest.approx(0.1 * slope, abs=1e-6)


def test_bias_corrected_kl_is_weighted_by_the_importance_ratio():
    # ratio = exp(0.5) = 1.64872, δ = log 2: k3 · ρ = 0.30685 · 1.64872 = 0.50591
    logps, old = torch.tensor([[0.5]]), torch.zeros(1, 1)
    ref = logps + math.log(2.0)
    out = GRPOLoss(beta=0.1, kl_bias_correction=True)(logps, torch.tensor([0.0]), torch.ones(1, 1), old, ref)
    assert out.kl.item() == pytest.approx((1 - math.log(2)) * math.exp(0.5), abs=1e-5)
    plain = GRPOLoss(beta=0.1)(logps, torch.tensor([0.0]), torch.ones(1, 1), old, ref)
    assert plain.kl.item() == pytest.approx(1 - math.log(2), abs=1e-6)


def test_unknown_variants_fail_naming_the_key():
    for key, value in [("importance_sampling_level", "tokens"), ("kl_estimator", "k4")]:
        with pytest.raises(ValueError, match=f"loss.{key}"):
            GRPOLoss(**{key: value})
