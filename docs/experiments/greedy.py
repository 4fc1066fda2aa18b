# ruff: noqa
# Scratch experiment of issue 15 (see ../listening-experiment.md); run with PYTHONPATH=<repo root>.
import sys, torch, numpy as np
from dataclasses import replace

torch.set_num_threads(1)
from transformers import Qwen2AudioForConditionalGeneration, AutoProcessor
from audio_thinker.models.policy import Qwen2AudioPolicy, render_prompts
from audio_thinker.format.prompts import THINK
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.data.controls import AudioControl

path = sys.argv[1]
control = sys.argv[2] if len(sys.argv) > 2 else None
model = Qwen2AudioForConditionalGeneration.from_pretrained(path).eval()
pol = Qwen2AudioPolicy(model, AutoProcessor.from_pretrained(path))
held = SyntheticAudioQA(32, seed=100003, tasks=["pitch_compare", "loudness_compare"], difficulties=["easy", "medium"])
if control:
    held = AudioControl(held, control, seed=1)
desc, ans = [], []
for i in range(32):
    ex = held[i]
    e = pol.encode_prompts(render_prompts(pol, [ex], replace(THINK, letter_options=False)), [ex.audio])
    t = pol.tokenizer.decode(pol.generate(e, 1, do_sample=False, max_new_tokens=32)[0], skip_special_tokens=True)
    orig = SyntheticAudioQA(
        32, seed=100003, tasks=["pitch_compare", "loudness_compare"], difficulties=["easy", "medium"]
    )[i]
    desc.append(orig.meta["caption"] in t)
    ans.append(f"<answer>{ex.answer}</answer>" in t)
    if i < 3:
        print(t)
print("describes", np.mean(desc), "answers", np.mean(ans))
