"""The encoder's hearing warm start: a cosine classifier per frame, labelled by which tone wins."""

from __future__ import annotations

import math

import torch

from audio_thinker.embedded.hearing import SCALE, frame_logits, second_is_greater
from audio_thinker.embedded.listening import listening_pool


def test_frame_logits_are_the_scaled_cosine_with_the_frames_task_direction():
    audio = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # [A, H]
    directions = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # [K, H]
    tasks = torch.tensor([0, 1, 0])
    expected = [SCALE * 1.0, SCALE * (2 / (2 * math.sqrt(2))), SCALE * (1 / math.sqrt(2))]
    torch.testing.assert_close(frame_logits(audio, directions, tasks), torch.tensor(expected))
    # Only the direction counts, never the size: a faint frame scores as a loud one.
    torch.testing.assert_close(frame_logits(audio * 1e-3, directions * 7, tasks), torch.tensor(expected))


def test_the_label_says_whether_the_second_tone_wins_as_the_caption_does():
    for example in listening_pool(size=32):
        second_wins = example.meta["caption"].endswith(("a high tone", "a loud tone"))
        assert second_is_greater(example) == float(second_wins)
