"""A TRL user's dataset and reward function, and an ms-SWIFT user's ORM class, in a real `train` run from the
user's own directory: no PYTHONPATH, no conversion."""

from __future__ import annotations

import json
import sys
import textwrap

import audio_thinker.train as train_module
from tests.helpers.data import sine, write_audio, write_jsonl

# Written in the shapes TRL's and ms-SWIFT's documentation show (the code is ours); each call is recorded.
TRL_REWARDS = """
import json

def short_answer(completions, level, **kwargs):
    with open("calls.jsonl", "a") as f:
        f.write(json.dumps({"term": "trl", "first": completions[0], "level": level,
                            "step": kwargs["trainer_state"].global_step, "prompt": kwargs["prompts"][0]}) + "\\n")
    return [None if lv == 0 else 1.0 / (1 + len(c[0]["content"])) for c, lv in zip(completions, level)]
"""
SWIFT_ORM = """
import json

class SolutionMatch:
    def __init__(self, bonus=1.0):
        self.bonus = bonus

    def __call__(self, completions, solution, **kwargs):
        with open("calls.jsonl", "a") as f:
            f.write(json.dumps({"term": "orm", "first": completions[0], "solution": solution}) + "\\n")
        return [self.bonus * float(s in c) for c, s in zip(completions, solution)]
"""


def test_trl_data_with_a_trl_reward_and_an_orm_class_trains(tmp_path, train_cfg, monkeypatch):
    write_audio(tmp_path / "tone.wav", sine(880.0, 0.5, 16_000))
    user_turn = {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "High or low?"}]}
    rows = [{"prompt": [user_turn], "audio": "tone.wav", "solution": "high", "level": i % 2} for i in range(4)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    (tmp_path / "my_trl_rewards.py").write_text(textwrap.dedent(TRL_REWARDS))
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "my_orms.py").write_text(textwrap.dedent(SWIFT_ORM))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    cfg = train_cfg(
        [
            "data=manifest",
            "data.train.path=train.jsonl",
            "data.val=null",
            "trainer.max_steps=1",
            "callbacks.model_checkpoint=null",
            "logger=csv",
            "+reward.terms.short._target_=my_trl_rewards.short_answer",
            "+reward.terms.short.weight=0.5",
            "+reward.terms.match._target_=my_orms.SolutionMatch",
            "+reward.terms.match.bonus=2.0",
            "reward.paths=[lib]",
        ]
    )
    try:
        metrics = train_module.train(cfg)
    finally:
        for name in ("my_trl_rewards", "my_orms"):
            sys.modules.pop(name, None)
    assert {"reward/short", "reward/match", "reward/total"} <= set(metrics)
    calls = {c["term"]: c for c in map(json.loads, (tmp_path / "calls.jsonl").read_text().splitlines())}
    assert calls["trl"]["first"][0]["role"] == "assistant"  # conversational data: message lists, as in TRL
    assert calls["trl"]["prompt"] == [user_turn] and calls["trl"]["step"] == 0
    assert len(calls["trl"]["level"]) == 4 and set(calls["trl"]["level"]) <= {0, 1}  # G=2 x 2 prompts
    assert isinstance(calls["orm"]["first"], str) and calls["orm"]["solution"] == ["high"] * 4  # texts, as ms-SWIFT
