"""Budget forcing: generate with the reasoning limited to L tokens, then always get an answer.

The rule (one call = one budget L for a whole batch):

1. The assistant turn is opened with `<think>` (forced), and the model writes its reasoning with at most L new
   tokens. Reasoning ends early when the model writes `</think>` or a stop token (e.g. `<|im_end|>`).
2. Whatever happened, `</think><answer>` is appended after the kept reasoning (a stop token is dropped; a
   reasoning cut at L tokens is simply closed), and the answer is generated with at most `answer_tokens` new
   tokens, ending at `</answer>` or a stop token.
3. The completion is `<think>{reasoning}</think><answer>{answer}</answer>`: the answer block is always closed,
   so every completion has an answer to grade; `answer_closed` records whether the model closed it itself.
4. Budget 0 skips step 1: the answer follows a forced empty block, `<think></think><answer>`. Every budget then
   shares one answer protocol, and the only thing that varies along the curve is how long the model reasons.

Guarantee: `think_tokens` (tokens generated inside the think block) is at most L. When `</think>` is a single
token (the embedded models) it is not counted; when it spans several tokens (e.g. the stock Qwen2 tokenizer)
generation stops on the string and its own tokens are counted too, so the bound still holds.
Decoding is greedy by default, or sampled `num_samples` times per prompt; the prompt's audio is encoded once
(`PromptEncoding`) and reused for every budget and both phases. The answer phase re-reads prompt + reasoning
(no attention cache is carried over): one extra prefill per budget, in exchange for a simple, exact rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audio_thinker.format.tags import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, completion_text
from audio_thinker.models.decoding import Decoding
from audio_thinker.models.policy import Policy, PromptEncoding


@dataclass(frozen=True)
class ForcedCompletion:
    """One budget-forced completion and how it ended."""

    text: str  # "<think>…</think><answer>…</answer>"
    think_tokens: int  # tokens generated inside the think block, <= budget
    answer_tokens: int  # tokens generated inside the answer block, <= answer_tokens
    think_closed: bool  # the model ended its reasoning itself (</think> or a stop token) within the budget
    answer_closed: bool  # the model wrote </answer> itself within the answer budget


def tag_ids(policy: Policy, text: str) -> list[int]:
    """Token ids of `text` (a tag or a run of tags) under the policy's tokenizer."""
    return policy.tokenizer(text, add_special_tokens=False)["input_ids"]


def prompt_rows(policy: Policy, encoding: PromptEncoding, num_samples: int) -> list[torch.Tensor]:
    """Each prompt's embeddings without its padding, repeated `num_samples` times: [B*n] x [P_i, H]."""
    embeds = policy.embed_prompts(encoding)  # [B, P, H]
    rows = [embeds[i][encoding.attention_mask[i].bool()] for i in range(embeds.shape[0])]
    return [row for row in rows for _ in range(num_samples)]


def left_pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack [L_i, H] rows into left-padded embeddings [N, T, H] and their attention mask [N, T]."""
    width = max(row.shape[0] for row in rows)
    embeds = rows[0].new_zeros(len(rows), width, rows[0].shape[-1])
    mask = torch.zeros(len(rows), width, dtype=torch.long, device=rows[0].device)
    for i, row in enumerate(rows):
        embeds[i, width - row.shape[0] :] = row
        mask[i, width - row.shape[0] :] = 1
    return embeds, mask


def continue_rows(
    policy: Policy,
    rows: list[torch.Tensor],
    suffixes: list[list[int]],
    max_new_tokens: int,
    stop: str,
    decoding: Decoding,
) -> list[list[int]]:
    """Generate after each prompt row + its suffix tokens until `stop`, a stop token or `max_new_tokens`."""
    embed = policy.hf_model.get_input_embeddings()
    tokens = [torch.tensor(ids, dtype=torch.long, device=rows[0].device) for ids in suffixes]
    embeds, mask = left_pad([torch.cat([row, embed(ids)]) for row, ids in zip(rows, tokens, strict=True)])
    stop_ids = list(policy.stop_token_ids())
    extra = {}
    tag = tag_ids(policy, stop)
    if len(tag) == 1:
        stop_ids.append(tag[0])
    else:  # a multi-token tag can only be caught as a string
        extra = {"stop_strings": [stop], "tokenizer": policy.tokenizer}
    out = policy.continue_embeddings(
        embeds, mask, stop_ids, max_new_tokens=max_new_tokens, **decoding.generate_kwargs(), **extra
    )  # [N, <= max_new_tokens]: only the new tokens, padded after each row's stop
    return out.tolist()


@dataclass(frozen=True)
class Segment:
    """One generated segment (reasoning or answer) cut where it ended."""

    ids: list[int]  # tokens to continue from: the kept text, without the closing tag
    text: str  # the kept text, without the closing tag
    length: int  # generated tokens before the end (a multi-token tag's own tokens included)
    ended: str  # "tag": the model closed it; "stop": a stop token; "budget": it ran out of tokens


def split_segment(policy: Policy, ids: list[int], tag: str) -> Segment:
    """Cut generated `ids` at the first closing `tag` or stop token (generation pads after either)."""
    tag_tokens = tag_ids(policy, tag)
    tag_token = tag_tokens[0] if len(tag_tokens) == 1 else None
    stops = {*policy.stop_token_ids(), policy.tokenizer.pad_token_id}
    end = next((i for i, token in enumerate(ids) if token in stops or token == tag_token), len(ids))
    decode = policy.tokenizer.decode
    text = decode(ids[:end], skip_special_tokens=True)
    if tag in text:  # a multi-token tag, or a single-token tag spelled out in pieces
        length = next(k for k in range(1, end + 1) if tag in decode(ids[:k], skip_special_tokens=True))
        text = text.split(tag)[0]
        return Segment(tag_ids(policy, text) if text else [], text, length, "tag")
    if end == len(ids):
        return Segment(ids, text, len(ids), "budget")
    return Segment(ids[:end], text, end, "tag" if ids[end] == tag_token else "stop")


@torch.no_grad()
def budget_forced_generate(
    policy: Policy, encoding: PromptEncoding, budget: int, answer_tokens: int = 16, decoding: Decoding | None = None
) -> list[ForcedCompletion]:
    """Completions with reasoning limited to `budget` tokens (module rule): [B * num_samples], samples adjacent."""
    if budget < 0:
        raise ValueError(f"a reasoning budget must be >= 0 tokens, got {budget}")
    if answer_tokens < 1:
        raise ValueError(f"answer_tokens must be >= 1, got {answer_tokens}")
    decoding = decoding or Decoding()
    rows = prompt_rows(policy, encoding, decoding.num_samples)
    think_open = tag_ids(policy, THINK_OPEN)
    if budget > 0:
        generated = continue_rows(policy, rows, [think_open] * len(rows), budget, THINK_CLOSE, decoding)
        thinks = [split_segment(policy, ids, THINK_CLOSE) for ids in generated]
    else:
        thinks = [Segment([], "", 0, "tag")] * len(rows)
    bridge = tag_ids(policy, THINK_CLOSE + ANSWER_OPEN)
    suffixes = [think_open + think.ids + bridge for think in thinks]
    generated = continue_rows(policy, rows, suffixes, answer_tokens, ANSWER_CLOSE, decoding)
    answers = [split_segment(policy, ids, ANSWER_CLOSE) for ids in generated]
    return [forced_completion(think, answer) for think, answer in zip(thinks, answers, strict=True)]


def forced_completion(think: Segment, answer: Segment) -> ForcedCompletion:
    """The completion text and counts of one reasoning segment and its answer segment."""
    return ForcedCompletion(
        text=completion_text(answer.text, think=think.text),
        think_tokens=think.length,
        answer_tokens=answer.length,
        think_closed=think.ended != "budget",
        answer_closed=answer.ended == "tag",
    )


@torch.no_grad()
def budget_grid_generate(
    policy: Policy,
    encoding: PromptEncoding,
    budgets: list[int],
    answer_tokens: int = 16,
    decoding: Decoding | None = None,
) -> dict[int, list[ForcedCompletion]]:
    """`budget_forced_generate` at every budget of `budgets`, sharing the work greedy decoding allows.

    Greedy decoding is prefix-consistent: the first L tokens of reasoning generated with a budget B >= L are the
    reasoning generated with budget L. So the reasoning is generated once, at the largest budget, and cut at each
    smaller one; and a row whose kept reasoning is the same at several budgets (it ended by itself within them)
    gets its answer generated once. For CESAR's 11-budget grid that is one reasoning pass instead of ten.
    Sampled decoding draws every budget on its own.
    """
    budgets = sorted({int(b) for b in budgets})
    decoding = decoding or Decoding()
    if decoding.do_sample or len(budgets) < 2 or budgets[0] < 0:
        return {b: budget_forced_generate(policy, encoding, b, answer_tokens, decoding) for b in budgets}
    if answer_tokens < 1:
        raise ValueError(f"answer_tokens must be >= 1, got {answer_tokens}")
    rows = prompt_rows(policy, encoding, 1)
    think_open, bridge = tag_ids(policy, THINK_OPEN), tag_ids(policy, THINK_CLOSE + ANSWER_OPEN)
    longest = continue_rows(policy, rows, [think_open] * len(rows), budgets[-1], THINK_CLOSE, decoding)
    thinks = {
        b: [split_segment(policy, ids[:b], THINK_CLOSE) if b else Segment([], "", 0, "tag") for ids in longest]
        for b in budgets
    }
    keys = {b: [(i, tuple(think.ids)) for i, think in enumerate(thinks[b])] for b in budgets}
    todo = list(dict.fromkeys(key for b in budgets for key in keys[b]))  # (row, reasoning) pairs, each once
    answers: dict[tuple[int, tuple[int, ...]], Segment] = {}
    for start in range(0, len(todo), len(rows)):  # at most a batch of rows per call, as one budget would run
        chunk = todo[start : start + len(rows)]
        suffixes = [think_open + list(ids) + bridge for _, ids in chunk]
        generated = continue_rows(policy, [rows[i] for i, _ in chunk], suffixes, answer_tokens, ANSWER_CLOSE, decoding)
        answers.update(zip(chunk, (split_segment(policy, ids, ANSWER_CLOSE) for ids in generated), strict=True))
    return {b: [forced_completion(t, answers[k]) for t, k in zip(thinks[b], keys[b], strict=True)] for b in budgets}
