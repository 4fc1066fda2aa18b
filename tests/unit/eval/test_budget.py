"""Budget forcing on the embedded tiny model: the think block never exceeds its budget and an answer follows."""

from __future__ import annotations

import pytest
import torch

from audio_thinker.eval import budget
from audio_thinker.eval.budget import budget_forced_generate, budget_grid_generate, split_segment, tag_ids
from audio_thinker.eval.predict import Generated, grade, predict
from audio_thinker.format.parsing import parse_completion
from audio_thinker.format.prompts import THINK
from audio_thinker.models.decoding import Decoding
from audio_thinker.models.policy import render_prompts
from audio_thinker.rollout.sampler import token_count


@pytest.fixture(scope="module")
def encoding(tiny_policy, val_examples):
    prompts = render_prompts(tiny_policy, val_examples, THINK)
    return tiny_policy.encode_prompts(prompts, [ex.audio for ex in val_examples])


def think_text(completion: str) -> str:
    return completion.split("<think>", 1)[1].split("</think>", 1)[0]


# The warm-started tiny model closes its reasoning by itself after about 20-25 tokens: 1 and 7 cut it, 64 does not.
@pytest.mark.parametrize("budget", [0, 1, 7, 64])
def test_think_block_fits_the_budget_and_an_answer_block_follows(tiny_policy, encoding, budget):
    done = budget_forced_generate(tiny_policy, encoding, budget, answer_tokens=4)
    assert len(done) == 4
    for completion in done:
        parsed = parse_completion(completion.text)
        assert parsed.has_think_block and parsed.answer is not None  # `<think>…</think><answer>…</answer>`
        assert completion.text.endswith("</answer>") and completion.text.count("<answer>") == 1
        # Counted twice: what generation produced, and the think text re-tokenised independently.
        assert completion.think_tokens <= budget
        assert token_count(tiny_policy.tokenizer, think_text(completion.text)) <= budget
        assert completion.answer_tokens <= 4
    if budget == 0:
        assert all(think_text(c.text) == "" and parse_completion(c.text).mode == "no_think" for c in done)
    if budget in (1, 7):  # shorter than the model's own reasoning: cut exactly at the budget
        assert all(c.think_tokens == budget and not c.think_closed for c in done)


def test_a_budget_above_the_natural_length_changes_nothing(tiny_policy, encoding):
    """With room to spare, forcing reproduces the model's own greedy completion token for token."""
    free = tiny_policy.generate(encoding, 1, do_sample=False, max_new_tokens=80)
    texts = tiny_policy.tokenizer.batch_decode(free, skip_special_tokens=True)
    forced = budget_forced_generate(tiny_policy, encoding, 200, answer_tokens=8)
    assert all(c.think_closed and c.answer_closed for c in forced)
    assert [c.text for c in forced] == texts


def test_sampling_draws_num_samples_per_prompt_within_budget(tiny_policy, encoding):
    done = budget_forced_generate(tiny_policy, encoding, 6, 4, Decoding(do_sample=True, num_samples=3))
    assert len(done) == 12  # 4 prompts x 3 samples, each prompt's samples adjacent
    assert all(c.think_tokens <= 6 and parse_completion(c.text).answer is not None for c in done)


def test_greedy_with_several_samples_is_refused():
    with pytest.raises(ValueError, match="do_sample=true"):
        Decoding(num_samples=4)


def test_a_closing_tag_spelled_in_pieces_still_ends_the_segment(tiny_policy):
    """Models whose tokenizer has no single `</think>` token write it in pieces; the text is cut there."""
    tokenizer = tiny_policy.tokenizer
    words = tokenizer("so it is B", add_special_tokens=False)["input_ids"]
    pieces = (
        tokenizer("</th", add_special_tokens=False)["input_ids"]
        + tokenizer("ink>", add_special_tokens=False)["input_ids"]
    )
    after = tokenizer(" more", add_special_tokens=False)["input_ids"]
    segment = split_segment(tiny_policy, words + pieces + after, "</think>")
    assert segment.text == "so it is B" and segment.ended == "tag"
    assert segment.length == len(words) + len(pieces)  # the tag's own tokens count against the budget
    assert "</think>" not in tokenizer.decode(segment.ids)


def test_a_stop_token_or_the_budget_ends_a_segment(tiny_policy):
    words = tiny_policy.tokenizer("so it is B", add_special_tokens=False)["input_ids"]
    stop = tiny_policy.stop_token_ids()[0]
    assert split_segment(tiny_policy, [*words, stop, *words], "</think>").ended == "stop"
    assert split_segment(tiny_policy, words, "</think>").ended == "budget"
    closed = split_segment(tiny_policy, [*words, *tag_ids(tiny_policy, "</think>")], "</think>")
    assert closed.ended == "tag" and closed.length == len(words) and closed.ids == words


def test_grading_reads_the_answer_letter(val_examples):
    example = val_examples[0]
    letter = example.answer_letter
    wrong = "A" if letter != "A" else "B"
    right = grade(example, Generated(f"<think>x</think><answer>{letter}</answer>", 1, 1), 25, 0)
    assert right.correct and right.answer == letter and right.mode == "think" and right.budget == 25
    assert not grade(example, Generated(f"<answer>{wrong}</answer>", 0, 1), None, 0).correct


def test_predict_runs_the_free_pass_then_each_budget_in_order(tiny_policy, val_examples):
    predictions = predict(tiny_policy, val_examples[:2], THINK, budgets=[0, 8], answer_tokens=4, max_new_tokens=40)
    assert [p.budget for p in predictions] == [None, None, 0, 0, 8, 8]
    assert [p.id for p in predictions] == [ex.id for ex in val_examples[:2]] * 3
    assert all(p.think_tokens <= 8 for p in predictions if p.budget is not None)


def test_the_grid_shares_its_reasoning_pass_and_gives_each_budgets_own_result(tiny_policy, encoding, monkeypatch):
    # 1 and 7 cut the ~20-token reasoning, 64 and 200 do not: the grid must equal one run per budget.
    budgets = [0, 1, 7, 64, 200]
    alone = {b: budget_forced_generate(tiny_policy, encoding, b, answer_tokens=4) for b in budgets}
    calls = []
    real = budget.continue_rows
    monkeypatch.setattr(budget, "continue_rows", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    grid = budget_grid_generate(tiny_policy, encoding, budgets, answer_tokens=4)
    assert grid == alone
    # One reasoning pass (at 200 tokens), then answers: 4 rows x {0, 1, 7, own end} = 16 distinct, 4 per call.
    assert calls == [200, 4, 4, 4, 4]


def test_sampled_grids_draw_every_budget_on_its_own(tiny_policy, encoding):
    torch.manual_seed(0)
    grid = budget_grid_generate(tiny_policy, encoding, [0, 6], 4, Decoding(do_sample=True, num_samples=2))
    assert {b: len(done) for b, done in grid.items()} == {0: 8, 6: 8}
    assert all(c.think_tokens <= 6 for c in grid[6])
