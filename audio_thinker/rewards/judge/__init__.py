"""An external model as a reward: backends (in-process or HTTP), a reply cache, reply grammars and the terms."""

from audio_thinker.rewards.judge.backends import (
    JudgeBackend,
    JudgeInterrupted,
    JudgeUnavailable,
    OpenAIChatJudge,
    TransformersJudge,
)
from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.scores import ReplyGrammar
from audio_thinker.rewards.judge.terms import JudgeConsistencyReward, JudgeThinkReward

__all__ = [
    "JudgeBackend",
    "JudgeCache",
    "JudgeConsistencyReward",
    "JudgeInterrupted",
    "JudgeThinkReward",
    "JudgeUnavailable",
    "OpenAIChatJudge",
    "ReplyGrammar",
    "TransformersJudge",
]
