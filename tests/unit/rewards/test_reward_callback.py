"""RewardCallback's rollout metrics: term means over applicable completions, shared metric keys add up."""

from __future__ import annotations

import math

import torch

from audio_thinker.data.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.models.policy import PromptEncoding
from audio_thinker.rewards.base import RewardTerm
from audio_thinker.rewards.callback import RewardCallback
from audio_thinker.rewards.suite import RewardSuite
from audio_thinker.rollout.batch import RolloutBatch


class Counting(RewardTerm):
    """Scores 1 and reports `failures` in `metrics()`, like a judge term."""

    def __init__(self, failures: float) -> None:
        super().__init__()
        self.failures = failures

    def score(self, inputs):
        return [1.0] * len(inputs)

    def metrics(self):
        return {"judge/failures": self.failures}


def test_metrics_average_applicable_values_and_sum_shared_keys():
    texts = ["<think>a b</think><answer>A</answer>", "<answer>B</answer>", "junk", "<answer>A</answer>"]
    rollout = RolloutBatch(
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
    callback = RewardCallback(RewardSuite({"j1": Counting(2.0), "j2": Counting(3.0)}))
    out = callback.metrics(rollout)
    assert out["judge/failures"] == 5.0  # 2 + 3: both judge terms' failures are counted
    assert out["reward/partial"] == 0.5  # mean of the two applicable values (1 and 0), NaN skipped
    assert math.isclose(out["reward/partial_std"], math.sqrt(0.5), rel_tol=1e-6)  # unbiased std of {1, 0}
    assert out["reward/total"] == 2.5
    assert out["completion/length"] == 2.0  # (3 + 2 + 1 + 2) / 4
    assert out["think/rate"] == 0.25 and out["format/malformed_rate"] == 0.25
    assert out["think/length"] == 0.5 and out["answer/length"] == 0.75
