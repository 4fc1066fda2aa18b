"""RewardCallback's rollout metrics: term means over applicable completions, shared metric keys add up."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from audio_thinker.callbacks.reward import RewardCallback
from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.models.policy import PromptEncoding
from audio_thinker.rewards.base import RewardTerm
from audio_thinker.rewards.suite import RewardSuite
from audio_thinker.rollout.batch import Rollout


class Counting(RewardTerm):
    """Scores 1 and reports `failures` in `metrics()`, like a judge term."""

    def __init__(self, failures: float) -> None:
        super().__init__()
        self.failures = failures

    def score(self, inputs):
        return [1.0] * len(inputs)

    def metrics(self):
        return {"judge/failures": self.failures}


def _four_completions() -> Rollout:
    texts = ["<think>a b</think><answer>A</answer>", "<answer>B</answer>", "junk", "<answer>A</answer>"]
    return Rollout(
        examples=[AudioQAExample(id="x", question="q", answer="a", choices=["a", "b"])] * 2,
        group_size=2,
        encoding=PromptEncoding(torch.zeros(2, 1, dtype=torch.long), torch.ones(2, 1, dtype=torch.long)),
        completion_ids=torch.zeros(4, 3, dtype=torch.long),
        completion_mask=torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 0]]),
        completions=[parse_completion(t) for t in texts],
        think_lengths=[2, 0, 0, 0],
        answer_lengths=[1, 1, 0, 1],
        rewards=torch.tensor([1.0, 2.0, 3.0, 4.0]),
        reward_terms={"partial": torch.tensor([1.0, float("nan"), 0.0, float("nan")])},
    )


def test_metrics_average_applicable_values_and_sum_shared_keys():
    callback = RewardCallback(RewardSuite({"j1": Counting(2.0), "j2": Counting(3.0)}))
    out = callback.metrics(_four_completions())
    assert out["judge/failures"] == 5.0  # 2 + 3: both judge terms' failures are counted
    assert out["reward/partial"] == 0.5  # mean of the two applicable values (1 and 0), NaN skipped
    assert math.isclose(out["reward/partial_std"], math.sqrt(0.5), rel_tol=1e-6)  # unbiased std of {1, 0}
    assert out["reward/total"] == 2.5
    assert out["completion/length"] == 2.0  # (3 + 2 + 1 + 2) / 4
    assert out["think/rate"] == 0.25 and out["format/malformed_rate"] == 0.25
    assert out["think/length"] == 0.5 and out["answer/length"] == 0.75


def test_a_terms_metric_that_is_not_one_number_is_named():
    callback = RewardCallback(RewardSuite({"j1": Counting(torch.tensor(2.0)), "mine": Counting("three")}))
    with pytest.raises(TypeError, match=r"reward.terms.mine: metrics\(\)\['judge/failures'\] is 'three'"):
        callback.metrics(_four_completions())
    one_tensor = RewardCallback(RewardSuite({"j1": Counting(torch.tensor(2.0))}))
    assert one_tensor.metrics(_four_completions())["judge/failures"] == 2.0  # a 0-d tensor is one number


class OtherRank:
    """A Lightning strategy stand-in for rank 0 of 2: `reduce` adds the other rank's values, in call order."""

    root_device = torch.device("cpu")

    def __init__(self, *others: list[float]) -> None:
        self.others, self.calls = list(others), 0

    def sum(self, values: list[float]) -> list[float]:
        """`sum_over_step` for this fake: this rank's values plus the other rank's."""
        return self.reduce(torch.tensor(values, dtype=torch.float64)).tolist()

    def reduce(self, tensor, reduce_op="sum"):
        assert reduce_op == "sum"
        other = torch.tensor(self.others[self.calls], dtype=tensor.dtype)
        self.calls += 1
        return tensor + other


class JudgeMean(RewardTerm):
    """Think-mode completions score their think length; the others the step's mean of those (like R_t)."""

    def score(self, inputs):
        own = [float(n) for c, n in zip(inputs.completions, inputs.think_lengths, strict=True) if c.mode == "think"]
        total, count = inputs.sum_over_step([sum(own), len(own)])
        mean = total / count if count else 0.0
        return [
            float(n) if c.mode == "think" else mean
            for c, n in zip(inputs.completions, inputs.think_lengths, strict=True)
        ]


def _rollout(texts: list[str], think_lengths: list[int]) -> Rollout:
    return Rollout(
        examples=[
            AudioQAExample(id=f"x{i}", question="q", answer="a", choices=["a", "b"]) for i in range(len(texts) // 2)
        ],
        group_size=2,
        encoding=PromptEncoding(
            torch.zeros(len(texts) // 2, 1, dtype=torch.long), torch.ones(len(texts) // 2, 1, dtype=torch.long)
        ),
        completion_ids=torch.zeros(len(texts), 3, dtype=torch.long),
        completion_mask=torch.ones(len(texts), 3, dtype=torch.long),
        completions=[parse_completion(t) for t in texts],
        think_lengths=think_lengths,
        answer_lengths=[1] * len(texts),
    )


def _trainer(strategy) -> SimpleNamespace:
    return SimpleNamespace(strategy=strategy, global_step=0, estimated_stepping_batches=10)


def test_step_statistics_are_taken_over_every_rank():
    # This rank: 1 of 2 completions thinks (length 4). The other rank: 3 of 6 think, think lengths summing to 8.
    # λ = (1 + 3) / (2 + 6) = 0.5; the judge-style mean = (4 + 8) / (1 + 3) = 3.0.
    rollout = _rollout(["<think>a b</think><answer>A</answer>", "<answer>B</answer>"], [4, 0])
    strategy = OtherRank([3, 6], [8, 3], [6, 20.0, 70.0])
    seen = {}

    class Spy(RewardTerm):
        def score(self, inputs):
            seen["lambda"] = inputs.batch_think_share
            return [0.0] * len(inputs)

    callback = RewardCallback(RewardSuite({"spy": Spy(weight=0.0), "judge": JudgeMean()}), scale_rewards="batch")
    scored = callback.with_rewards(rollout, _trainer(strategy))
    assert seen["lambda"] == 0.5
    assert scored.reward_terms["judge"].tolist() == [4.0, 3.0]
    # batch std over the 8 rewards: here [4, 3] + the other rank's 6 values with sum 20 and sum of squares 70:
    # n = 8, Σ = 27, Σ² = 95 -> var = (95 - 27²/8) / 7 = 0.55357, std = 0.74402; the group mean is 3.5.
    std = math.sqrt((95 - 27**2 / 8) / 7)
    assert scored.advantages.tolist() == pytest.approx([0.5 / (std + 1e-4), -0.5 / (std + 1e-4)], rel=1e-6)
    assert strategy.calls == 3 and rollout.advantages is None  # the sampled rollout itself is not changed


def test_a_rank_with_nothing_to_score_still_enters_every_collective():
    strategy = OtherRank([1, 2], [5, 1], [2, 1.0, 1.0])
    callback = RewardCallback(RewardSuite({"judge": JudgeMean()}))
    scored = callback.with_rewards(Rollout.empty(2, 1, torch.device("cpu"), 1.0), _trainer(strategy))
    assert strategy.calls == 3 and scored.advantages.numel() == 0


def test_metrics_describe_the_whole_step_over_every_rank():
    # This rank: rewards [1, 3], one think completion of 2. The other rank (6 completions): rewards summing to 6
    # with squares summing to 10, 3 think completions of length 9 in all, 30 completion tokens, none malformed.
    rollout = replace(
        _rollout(["<think>a b</think><answer>A</answer>", "<answer>B</answer>"], [2, 0]),
        rewards=torch.tensor([1.0, 3.0]),
        reward_terms={},
    )
    # n, shapes (length, think, think length, answer, malformed), reward (n, sum, squares), difficulty "unknown"
    # (completions, thinking)
    other = [6, 30, 3, 9, 6, 0, 6, 6.0, 10.0, 6, 3]
    out = RewardCallback(RewardSuite({"judge": JudgeMean()})).metrics(rollout, OtherRank(other).sum)
    assert out["reward/total"] == pytest.approx((4 + 6) / 8)
    assert out["reward/total_std"] == pytest.approx(math.sqrt((10 + 10 - 10**2 / 8) / 7))
    assert out["think/rate"] == pytest.approx(4 / 8) and out["think/length"] == pytest.approx(11 / 8)
    assert out["completion/length"] == pytest.approx((6 + 30) / 8)


def test_think_rate_by_difficulty_over_every_rank_and_its_labels():
    # This rank: an easy example (both samples think) and a hard one (one of two thinks). The other rank has only
    # "medium" and "hard" examples: 4 medium completions (none think) and 4 hard ones (3 think).
    texts = ["<think>a</think><answer>A</answer>"] * 3 + ["<answer>B</answer>"]
    rollout = replace(_rollout(texts, [1, 1, 1, 0]), rewards=torch.zeros(4), reward_terms={})
    rollout = replace(
        rollout, examples=[replace(ex, difficulty=d) for ex, d in zip(rollout.examples, ["easy", "hard"], strict=True)]
    )
    labels_seen = []

    def gather(labels):
        labels_seen.append(labels)
        return [labels, {"medium", "hard"}]

    # Other rank, in the order of the summed vector: n, 5 shapes, reward (n, sum, squares), then per label in
    # sorted order (easy, hard, medium): (completions, thinking).
    other = [8, 0, 3, 0, 0, 0, 8, 0.0, 0.0, 0, 0, 4, 3, 4, 0]
    out = RewardCallback(RewardSuite({"judge": JudgeMean()})).metrics(rollout, OtherRank(other).sum, gather)
    assert labels_seen == [{"easy", "hard"}]
    assert out["think/rate_by_difficulty/easy"] == 1.0  # 2 of 2, all on this rank
    assert out["think/rate_by_difficulty/hard"] == pytest.approx(4 / 6)  # 1 of 2 here + 3 of 4 there
    assert out["think/rate_by_difficulty/medium"] == 0.0  # only the other rank has medium examples
    assert out["think/rate"] == pytest.approx(6 / 12)
