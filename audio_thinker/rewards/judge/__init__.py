"""An external model as a reward: backends (in-process or HTTP), a reply cache, score parsing and the terms."""

from audio_thinker.rewards.judge.backends import JudgeBackend, OpenAIChatJudge, TransformersJudge
from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.terms import JudgeConsistencyReward, JudgeThinkReward

__all__ = [
    "JudgeBackend",
    "JudgeCache",
    "JudgeConsistencyReward",
    "JudgeThinkReward",
    "OpenAIChatJudge",
    "TransformersJudge",
]
