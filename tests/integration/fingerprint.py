"""A test callback: each rank writes a fingerprint of its trainable weights and the examples it saw."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


def _fingerprint(module) -> list[float]:
    return [float(p.detach().double().sum()) for p in module.parameters() if p.requires_grad]


class WeightFingerprint(L.Callback):
    """Writes `weights_rank<r>.pt` into the trainer's root dir at the end of training."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.initial, self.examples = _fingerprint(pl_module), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.examples += [ex.id for ex in batch.get("examples", [])]  # a generation's first micro-step only

    def on_train_end(self, trainer, pl_module) -> None:
        out = Path(trainer.default_root_dir) / f"weights_rank{trainer.global_rank}.pt"
        state = {"step": trainer.global_step, "initial": self.initial, "final": _fingerprint(pl_module),
                 "examples": self.examples, "node": trainer.node_rank, "num_nodes": trainer.num_nodes,
                 "environment": type(trainer.strategy.cluster_environment).__name__}  # fmt: skip
        torch.save(state, out)
