"""What a reward term is: a named, weighted function of a batch of parsed completions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import ParsedCompletion


@dataclass
class RewardInputs:
    """Everything a reward term may read, aligned by completion index (N = examples x group size)."""

    completions: list[ParsedCompletion]  # [N]
    examples: list[AudioQAExample]  # [N]: the example each completion answers
    think_lengths: list[int]  # [N]: tokens inside <think>, counted with the policy's tokenizer
    answer_lengths: list[int]  # [N]: tokens inside <answer>
    group_size: int = 1
    step: int = 0
    total_steps: int = 1
    # Share of think-mode completions over the whole step (all ranks); None: over these completions only.
    batch_think_share: float | None = None
    # Element-wise sum of per-rank values over the whole step (a collective under DDP: a term that calls it must
    # call it on every rank, even with no completions). The default, one process, returns its input.
    sum_over_step: Callable[[Sequence[float]], list[float]] = list

    def __len__(self) -> int:
        return len(self.completions)

    def subset(self, index: int) -> RewardInputs:
        """The inputs of one completion alone (used to name the example a failing term chokes on)."""
        pick = slice(index, index + 1)
        # Local sums only: a per-completion re-run happens on one rank, so it must not enter a collective.
        return replace(
            self,
            completions=self.completions[pick],
            examples=self.examples[pick],
            think_lengths=self.think_lengths[pick],
            answer_lengths=self.answer_lengths[pick],
            group_size=1,
            sum_over_step=list,
        )


class RewardAbort(RuntimeError):
    """A term cannot score the batch at all (its judge is down, the run was told to stop): the suite re-raises it
    as is, without re-running the term per example to find a culprit."""


class RewardTerm(ABC):
    """A reward term. Subclasses implement `score`; `None`/NaN in its output means "not applicable"."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)
        self.name = type(self).__name__  # replaced by the suite's key

    @abstractmethod
    def score(self, inputs: RewardInputs) -> Sequence[float | None] | torch.Tensor:
        """One value per completion."""

    def __call__(self, inputs: RewardInputs) -> torch.Tensor:
        """`score` as a float tensor [N] with NaN where the term does not apply."""
        values = self.score(inputs)
        if isinstance(values, torch.Tensor):
            out = values.detach().to(torch.float32).flatten().cpu()
        else:
            out = torch.tensor([float("nan") if v is None else float(v) for v in values], dtype=torch.float32)
        if out.numel() != len(inputs):
            raise ValueError(f"reward term '{self.name}' returned {out.numel()} values for {len(inputs)} completions")
        return out

    def setup(self) -> None:
        """Called once before training: fail early on what would fail at the first step (e.g. a judge endpoint)."""
        return None

    def metrics(self) -> dict[str, float]:
        """Extra scalars about the last call (e.g. judge failures), logged as `<key>` by the reward callback."""
        return {}
