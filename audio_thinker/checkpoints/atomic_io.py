"""The Lightning `CheckpointIO` plugin that writes checkpoints atomically and reads them as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsspec.utils import get_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from audio_thinker.checkpoints.files import explained_read_errors, verify_checkpoint, write_atomically
from audio_thinker.checkpoints.finite_weights import check_weights_finite


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` to a temporary file beside the target, fsync, then `os.replace`: a checkpoint is whole or absent.

    A crash mid-write leaves at most a hidden `.<name>.<random>.tmp`, which no `*.ckpt` lookup (`ckpt_path=last`
    included) matches. Loading defaults to `weights_only=True`: checkpoints hold only tensors and plain containers;
    a local file is loaded only once the checksums its zip records match (`files.verify_checkpoint`). Remote paths
    (s3://, ...) keep Lightning's fsspec transaction.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        check_weights_finite(checkpoint, path)  # diverged weights are never written over the last good checkpoint
        if storage_options is not None or get_protocol(str(path)) != "file":
            return super().save_checkpoint(checkpoint, path, storage_options)
        write_atomically(checkpoint, Path(path))

    def load_checkpoint(
        self, path: Any, map_location: Any = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        with explained_read_errors(path):
            verify_checkpoint(path)
            return super().load_checkpoint(path, map_location, True if weights_only is None else weights_only)
