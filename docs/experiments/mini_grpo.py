# ruff: noqa
# Scratch experiment of issue 15 (see ../listening-experiment.md); run with PYTHONPATH=<repo root>.
"""Minimal on-policy GRPO on the policy API (no Lightning): does the mapping description -> answer get learned?"""

import sys, time, torch, numpy as np
from dataclasses import replace

torch.set_num_threads(1)
SEED = int(sys.argv[4]) if len(sys.argv) > 4 else 0
torch.manual_seed(SEED)
from transformers import Qwen2AudioForConditionalGeneration, AutoProcessor
from audio_thinker.models.policy import Qwen2AudioPolicy, render_prompts
from audio_thinker.format.prompts import THINK
from audio_thinker.data.synthetic import SyntheticAudioQA

path, lr, steps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
model = Qwen2AudioForConditionalGeneration.from_pretrained(path)
pol = Qwen2AudioPolicy(model, AutoProcessor.from_pretrained(path))
for p in model.model.audio_tower.parameters():
    p.requires_grad_(False)
for p in model.model.multi_modal_projector.parameters():
    p.requires_grad_(False)
T = dict(tasks=["pitch_compare", "loudness_compare"], difficulties=["easy", "medium"])
train = SyntheticAudioQA(256, seed=0, **T)
tpl = replace(THINK, letter_options=False)
tok = pol.tokenizer
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, betas=(0.9, 0.99))
rng = np.random.default_rng(SEED)
G = 8
t0 = time.time()
accs = []
for step in range(steps):
    batch = [train[int(i)] for i in rng.integers(256, size=8)]
    e = pol.encode_prompts(render_prompts(pol, batch, tpl), [x.audio for x in batch])
    model.eval()
    out = pol.generate(e, G, do_sample=True, max_new_tokens=32, temperature=1.0, top_k=0, top_p=1.0)
    model.train()
    texts = [tok.decode(o, skip_special_tokens=True) for o in out]
    r = torch.tensor([float(f"<answer>{batch[i // G].answer}</answer>" in t) for i, t in enumerate(texts)])
    accs.append(r.mean().item())
    rg = r.view(-1, G)
    adv = ((rg - rg.mean(1, keepdim=True)) / (rg.std(1, keepdim=True) + 1e-4)).view(-1)
    pad = tok.pad_token_id
    eos_ids = set(pol.stop_token_ids())
    mask = torch.zeros_like(out)
    for i, o in enumerate(out):
        for j, t in enumerate(o.tolist()):
            mask[i, j] = 1
            if t in eos_ids:
                break
    lp = pol.completion_logps(e, out, mask)
    loss = -((lp * mask).sum(1) / mask.sum(1) * adv).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step % 10 == 9:
        print(f"step {step + 1} acc(sampled, last 10) {np.mean(accs[-10:]):.2f} t {time.time() - t0:.0f}s", flush=True)
