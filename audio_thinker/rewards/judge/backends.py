"""Judge backends: something that answers a batch of chat conversations with one text reply each.

Two backends share one interface (`JudgeBackend`), chosen in config with `_target_`:
- `TransformersJudge` (`judge.inprocess`): a causal LM in this process, constrained to the reply grammar.
- `OpenAIChatJudge` (`judge.endpoint`): any OpenAI-compatible `/chat/completions` server, with structured output.
A reply is None when the judge could not answer (timeout, HTTP error, unreadable body); the terms then apply
their failure policy and count it. Programming errors (a bad model path) raise instead. Configs name the classes
through this module, which is why it only re-exports them.
"""

from audio_thinker.rewards.judge.endpoint import OpenAIChatJudge
from audio_thinker.rewards.judge.inprocess import TransformersJudge
from audio_thinker.rewards.judge.protocol import (
    JudgeBackend,
    JudgeInterrupted,
    JudgeUnavailable,
    Messages,
    TransportReport,
)

__all__ = [
    "JudgeBackend",
    "JudgeInterrupted",
    "JudgeUnavailable",
    "Messages",
    "OpenAIChatJudge",
    "TransformersJudge",
    "TransportReport",
]
