"""The judge's side of the logged samples: the prompts it was shown and what it replied."""

from __future__ import annotations

import lightning as L

from audio_thinker.callbacks.reward import RewardCallback


class JudgeSamplesCallback(L.Callback):
    """Every `every_n_steps` steps, the judge terms' first prompts, replies and values as TensorBoard text.

    Reads `exchanges` from the judge terms of the reward callback's suite, after it scored the step's rollout; a
    suite without judge terms logs nothing. Tag: `samples/judge`.
    """

    def __init__(self, every_n_steps: int = 10) -> None:
        self.every_n_steps = every_n_steps
        self._logged_step = -1

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if not self.every_n_steps or step % self.every_n_steps or step == self._logged_step:
            return
        experiment = getattr(trainer.logger, "experiment", None)
        text = self.render(trainer)
        if text and hasattr(experiment, "add_text"):
            experiment.add_text("samples/judge", text, global_step=step)
            self._logged_step = step

    @staticmethod
    def render(trainer: L.Trainer) -> str:
        """Markdown: per judge term, each kept exchange's prompt (verbatim), reply and parsed value."""
        blocks = []
        for callback in trainer.callbacks:
            if not isinstance(callback, RewardCallback):
                continue
            for name, term in callback.suite.terms.items():
                for exchange in getattr(term, "exchanges", []):
                    prompt = "\n".join("    " + line for line in str(exchange["prompt"]).splitlines())
                    blocks.append(f"**{name}** reply {exchange['reply']!r} -> value {exchange['value']}\n\n{prompt}")
        return "\n\n".join(blocks)
