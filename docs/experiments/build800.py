# ruff: noqa
# Scratch experiment of issue 15 (see ../listening-experiment.md); run with PYTHONPATH=<repo root>.
import sys, torch

torch.set_num_threads(1)
from unittest import mock
from audio_thinker.models import tiny, listening

steps = int(sys.argv[1])
orig = listening.teach_listening
with mock.patch.object(tiny, "teach_listening", lambda policy, seed=0: orig(policy, steps=steps, seed=seed)):
    print(tiny.ensure_tiny_qwen2_audio("/work/exp/cache800"))
