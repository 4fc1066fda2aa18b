"""The judge's prompts and replies reach the logged samples (TensorBoard text `samples/judge`), from the reward
callback that owns the suite."""

from __future__ import annotations

from types import SimpleNamespace

from audio_thinker.callbacks.reward import RewardCallback
from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.rewards.base import RewardInputs
from audio_thinker.rewards.judge.terms import JudgeThinkReward
from audio_thinker.rewards.outcome import AccuracyReward
from audio_thinker.rewards.suite import RewardSuite


class Seven:
    def complete(self, prompts, grammar=None):
        return ["7"] * len(prompts)


class Writer:
    def __init__(self) -> None:
        self.texts: list[tuple[str, str, int]] = []

    def add_text(self, tag: str, text: str, global_step: int) -> None:
        self.texts.append((tag, text, global_step))


def test_judge_exchanges_are_logged_every_n_steps():
    example = AudioQAExample(id="1", question="Which tone is higher?", answer="first", choices=["first", "second"])
    done = parse_completion("<think>The first tone rises.</think><answer>A</answer>")
    suite = RewardSuite({"accuracy": AccuracyReward(), "judge_think": JudgeThinkReward(Seven())})
    suite(RewardInputs([done], [example], [4], [1]))
    writer = Writer()
    trainer = SimpleNamespace(logger=SimpleNamespace(experiment=writer))
    callback = RewardCallback(suite, log_samples_every_n_steps=2)
    for step in (0, 0, 1, 2):  # two micro-batches at step 0 log once; step 1 is off the schedule
        trainer.global_step = step
        callback.on_train_batch_start(trainer, None, {}, 0)
    assert [(tag, step) for tag, _, step in writer.texts] == [("samples/judge", 0), ("samples/judge", 2)]
    text = writer.texts[0][1]
    assert "**judge_think** reply '7' -> value 0.7" in text
    assert "    Question: Which tone is higher?" in text and "from 0 (worthless) to 10" in text
