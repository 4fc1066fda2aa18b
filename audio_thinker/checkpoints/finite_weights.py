"""Diverged weights are never checkpointed: a checkpoint whose weights hold NaN or inf is refused, not written.

`DivergenceError` lives here, on the ground floor, because writing a checkpoint is the lowest place that raises
it; generation raises it too (`audio_thinker.models.divergence.FiniteScores`).
"""

from __future__ import annotations

import math
from typing import Any

from audio_thinker.checkpoints.files import nonfinite_weights


class DivergenceError(RuntimeError):
    """Training or sampling produced NaN/inf; the message names the setting that most likely caused it."""


LR_HINT = (
    "the weights have diverged: optimizer.lr is most likely too high (lower it, e.g. by 10x, or clip gradients "
    "with trainer.gradient_clip_val=1.0)"
)


def check_weights_finite(checkpoint: dict[str, Any], path: Any) -> None:
    """Raise a `DivergenceError` instead of writing `checkpoint` to `path` when its weights hold NaN or inf."""
    broken = nonfinite_weights(checkpoint.get("state_dict") or {})
    if not broken:
        return
    groups = [g for opt in checkpoint.get("optimizer_states") or [] for g in opt.get("param_groups", [])]
    lrs = sorted({g["lr"] for g in groups if isinstance(g.get("lr"), float) and math.isfinite(g["lr"])})
    lr = f" (optimizer.lr is {lrs[-1]:g} at this step)" if lrs else ""
    raise DivergenceError(
        f"step {checkpoint.get('global_step', '?')}: {len(broken)} weight tensor(s) hold NaN or inf "
        f"({', '.join(broken[:3])}); {LR_HINT}{lr}. The checkpoint {path} is not written, so the last one on disk "
        "holds the weights from before."
    )
