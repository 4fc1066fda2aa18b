"""`audio-thinker eval`, evaluation from training outputs, the live scaling callback and sweep summaries."""

from __future__ import annotations

import csv
import json
import logging
import runpy
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from audio_thinker.cli import CONFIG_MODULE
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.eval.budget import budget_forced_generate
from audio_thinker.eval.eval_policy import eval_model_config, load_eval_policy
from audio_thinker.format.prompts import THINK
from audio_thinker.models.policy import render_prompts
from audio_thinker.train import build_module, build_trainer
from tests.helpers.benchmarks import EXCERPT, official_rule, read_items, write_placeholder_audio
from tests.helpers.configs import FAST, compose_train
from tests.helpers.rewards import LENGTH_REWARD
from tests.helpers.runs import run_cli
from tests.helpers.tb import read_scalars, scalar_tags
from tests.helpers.training import fake_run

REPO = Path(__file__).resolve().parents[2]
LORA = ["quant=lora", "model.dtype=float32"]
SCALING_TAGS = {
    "scaling/accuracy@0",
    "scaling/accuracy@4",
    "scaling/slope",
    "scaling/sweet_spot",
    "scaling/sweet_spot_accuracy",
}


def greedy_texts(policy, budget: int = 16) -> list[str]:
    """Budget-forced greedy completions of two validation examples."""
    examples = [SyntheticAudioQA(size=2, seed=100003)[i] for i in range(2)]
    encoding = policy.encode_prompts(render_prompts(policy, examples, THINK), [ex.audio for ex in examples])
    return [c.text for c in budget_forced_generate(policy, encoding, budget, answer_tokens=4)]


def test_eval_cli_writes_predictions_metrics_and_the_scaling_curve(tmp_path):
    result = run_cli(
        "eval",
        "eval.max_examples=4",
        "eval.budgets=[0,4,8]",
        "eval.max_new_tokens=32",
        "eval.answer_tokens=4",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 4 * 4  # 4 examples x (free pass + 3 budgets)
    assert {line["budget"] for line in lines} == {None, 0, 4, 8}
    assert all(line["think_tokens"] <= line["budget"] for line in lines if line["budget"] is not None)
    assert {"id", "task", "difficulty", "completion", "answer", "correct"} <= set(lines[0])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    free = [line for line in lines if line["budget"] is None]
    assert metrics["n_examples"] == 4 and metrics["accuracy"] == sum(x["correct"] for x in free) / 4
    assert set(metrics["accuracy_by_task"]) == {line["task"] for line in free}
    scaling = json.loads((tmp_path / "scaling.json").read_text())
    assert scaling["budgets"] == [0, 4, 8]
    assert scaling["accuracy"] == [metrics["by_budget"][b]["accuracy"] for b in ("0", "4", "8")]
    assert scaling["sweet_spot"] in (0, 4, 8) and isinstance(scaling["slope"], float)
    assert scaling["n"] == [4, 4, 4] and scaling["trend"] and isinstance(scaling["slope_stderr"], float)
    options = [len(example.choices) for example in SyntheticAudioQA(size=32, seed=100003)]
    assert scaling["chance"] is not None and min(1 / k for k in options) <= scaling["chance"] <= 0.5
    forced = [line for line in lines if line["budget"] == 4]
    assert scaling["mean_think_tokens"][1] == pytest.approx(sum(x["think_tokens"] for x in forced) / 4)
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"


def official_accuracy(entries: list[dict], key: str | None = None) -> dict[str, float] | float:
    """Accuracy under MMAU's rule (our independent re-implementation), overall or per value of `key`."""
    if key is None:
        return sum(map(official_rule, entries)) / len(entries)
    groups = defaultdict(list)
    for entry in entries:
        groups[entry[key]].append(official_rule(entry))
    return {name: sum(v) / len(v) for name, v in groups.items()}


def test_eval_on_real_mmau_items_grades_every_item_with_both_scorers(tmp_path):
    items = read_items(EXCERPT)
    manifest = shutil.copy(EXCERPT, tmp_path / "mmau-test-mini.json")
    write_placeholder_audio(items, tmp_path)
    (tmp_path / items[3]["audio_id"]).unlink()  # an unreadable clip is left out, the other 40 are graded
    out = tmp_path / "eval"
    result = run_cli(
        "eval",
        "data=manifest",
        f"data.val.path={manifest}",
        "eval.budgets=[0,4]",
        "eval.max_new_tokens=24",
        "eval.answer_tokens=4",
        f"hydra.run.dir={out}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scorer"] == "mmau" and metrics["n_examples"] == 40
    assert [s["id"] for s in metrics["skipped"]] == [items[3]["id"]]
    assert metrics["accuracy"] == metrics["scorers"]["mmau"]["accuracy"]
    assert set(metrics["scorers"]) == {"mmau", "choice"} and "by_sub_category" in metrics["scorers"]["choice"]
    assert set(metrics["by_budget"]["4"]["scorers"]["choice"]["by_task"]) == {"sound", "music", "speech"}
    # MMAU's own rule on predictions_official.json gives our mmau numbers, overall, by task and by difficulty.
    official = json.loads((out / "predictions_official.json").read_text())
    assert [e["id"] for e in official] == [i["id"] for i in items if i is not items[3]]
    assert all(e.keys() == {*items[0], "model_output"} for e in official)
    mmau = metrics["scorers"]["mmau"]
    assert official_accuracy(official) == pytest.approx(mmau["accuracy"])
    assert official_accuracy(official, "task") == pytest.approx(mmau["by_task"])
    assert official_accuracy(official, "difficulty") == pytest.approx(mmau["by_difficulty"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-step full fine-tuning run: its composed config, its module and its last checkpoint."""
    out = tmp_path_factory.mktemp("train")
    cfg = compose_train(out, ["trainer.max_steps=1", "optimizer.lr=1e-2", "callbacks.export=null", *LENGTH_REWARD])
    module = build_module(cfg)
    build_trainer(cfg).fit(module, datamodule=instantiate(cfg.data))
    return cfg, module, str(out / "checkpoints" / "last.ckpt")


def test_eval_from_a_training_checkpoint_reproduces_the_trained_policy(trained):
    cfg, module, ckpt = trained
    loaded = load_eval_policy(cfg.model, ckpt_path=ckpt)
    base = instantiate(cfg.model)
    weights, restored, untouched = module.policy.state_dict(), loaded.state_dict(), base.state_dict()
    assert weights.keys() == restored.keys()
    assert all(torch.equal(weights[k], restored[k]) for k in weights)  # every weight, not a sample of them
    assert any(not torch.equal(weights[k], untouched[k]) for k in weights)  # and the step did change some
    assert greedy_texts(loaded) == greedy_texts(module.policy)


def test_a_checkpoint_for_another_model_config_is_refused(trained, train_cfg):
    _, _, ckpt = trained
    with pytest.raises(ValueError, match="does not match"):
        load_eval_policy(train_cfg(LORA).model, ckpt_path=ckpt)


def test_eval_with_a_saved_adapter_loads_its_weights(train_cfg, tmp_path):
    lora_cfg = train_cfg(LORA).model
    policy = instantiate(lora_cfg)
    with torch.no_grad():  # LoRA B starts at zero: give the adapter an effect to reproduce
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    policy.model.save_pretrained(tmp_path / "adapter")
    loaded = load_eval_policy(train_cfg().model, adapter=str(tmp_path / "adapter"))
    saved = {k: v for k, v in policy.state_dict().items() if "lora_" in k}
    assert saved and all(torch.equal(v, loaded.state_dict()[k]) for k, v in saved.items())
    assert greedy_texts(loaded, budget=8) == greedy_texts(policy, budget=8)


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> Path:
    """`audio-thinker train -m loss.beta=0,0.04` with the scaling callback: 2 runs x 2 steps."""
    sweep = tmp_path_factory.mktemp("sweep")
    result = run_cli(
        "train",
        "-m",
        *FAST,
        "loss.beta=0,0.04",
        "callbacks=with_scaling",
        "callbacks.scaling_curve.every_n_steps=2",
        "callbacks.scaling_curve.budgets=[0,4]",
        "callbacks.scaling_curve.max_examples=2",
        "callbacks.scaling_curve.answer_tokens=4",
        "callbacks.model_checkpoint=null",
        "callbacks.export=null",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


def _run(sweep: Path, number: int) -> Path:
    """Run `number` of a multirun (its folder is named `<number>_<overrides>`)."""
    (found,) = sweep.glob(f"{number}_*")
    return found


def test_scaling_callback_logs_its_curve_at_start_and_every_n_steps(multirun):
    for run in (0, 1):
        logs = _run(multirun, run) / "tensorboard"
        assert scalar_tags(logs) >= SCALING_TAGS
        assert [step for step, _ in read_scalars(logs, "scaling/slope")] == [0, 2]  # at start, then every 2 steps
        images = set()
        for events in logs.rglob("events.out.tfevents.*"):
            accumulator = EventAccumulator(str(events))
            accumulator.Reload()
            images |= set(accumulator.Tags()["images"])
        assert "scaling/curve" in images


def test_sweep_summary_compares_the_runs(multirun, tmp_path):
    # An evaluation of run 1 (as `audio-thinker eval hydra.run.dir=<run>/eval` would leave it), hand-made.
    (_run(multirun, 1) / "eval").mkdir()
    (_run(multirun, 1) / "eval" / "metrics.json").write_text(json.dumps({"accuracy": 0.625, "think_rate": 0.5}))
    (_run(multirun, 1) / "eval" / "scaling.json").write_text(
        json.dumps(
            {
                "budgets": [0, 25],
                "accuracy": [0.5, 0.75],
                "slope": 0.01,
                "intercept": 0.5,
                "sweet_spot": 25,
                "sweet_spot_accuracy": 0.75,
            }
        )
    )
    main = runpy.run_path(str(REPO / "tools" / "summarize_sweep.py"))["main"]
    assert main([str(multirun), "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [row["run"] for row in rows] == ["0", "1"]  # the job numbers of `0_<overrides>`, `1_<overrides>`
    assert [row["loss.beta"] for row in rows] == ["0", "0.04"]  # the swept key; FAST overrides are shared
    assert "trainer.max_steps" not in rows[0]
    assert all(row["reward/total"] != "" and row["scaling/slope"] != "" for row in rows)
    points = read_scalars(_run(multirun, 0) / "tensorboard", "reward/total")
    assert [step for step, _ in points] == [0, 1]  # a 2-step run: both steps fall in the last 10
    mean = sum(value for _, value in points) / 2
    assert float(rows[0]["reward/total"]) == pytest.approx(mean, rel=1e-3, abs=1e-4)  # the mean (4 digits)
    assert (rows[0]["eval/accuracy"], rows[1]["eval/accuracy"]) == ("", "0.625")
    assert (rows[1]["eval/slope"], rows[1]["eval/sweet_spot"]) == ("0.01", "25")
    assert "| run | loss.beta | reward/total |" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_of_a_checkpoint_rebuilds_the_model_from_the_runs_own_config(tmp_path, caplog):
    lora_policy, ckpt = fake_run(tmp_path, LORA)  # a LoRA run; the eval config below has no LoRA
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        eval_cfg = compose("eval")
    with caplog.at_level(logging.INFO, logger="audio_thinker.eval.eval_policy"):
        model_cfg = eval_model_config(eval_cfg.model, str(ckpt))
    assert model_cfg.lora is not None and f"model config: {ckpt.parent.parent / '.hydra'}" in caplog.text
    loaded = load_eval_policy(model_cfg, ckpt_path=str(ckpt))
    expected = {k: v for k, v in lora_policy.state_dict().items() if "lora_" in k}
    assert expected and all(torch.equal(v, loaded.state_dict()[k]) for k, v in expected.items())
    with pytest.raises(ValueError, match="does not match"):  # run_config=null: the eval config's own (plain) model
        load_eval_policy(eval_cfg.model, ckpt_path=str(ckpt), run_config=None)
