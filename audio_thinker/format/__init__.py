"""The think/answer output format: its tags, completion parsing, option lettering and answer matching.

The ground floor of the package: nothing here imports from any other audio_thinker package, so rewards,
rollout and evaluation all read completions and grade answers with the same code.
"""
