"""`ckpt_path=<run>/checkpoints/checkpoint-<step>`, the Hugging Face folders training writes, works where a checkpoint
does: resume and export take that step's Lightning checkpoint, eval takes it or the folder's own weights."""

from __future__ import annotations

import shutil

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

import audio_thinker.train as train_module
from audio_thinker.checkpoints.files import saved_step
from audio_thinker.checkpoints.hf_folders import CheckpointPathError, EvalWeights, eval_weights, lightning_checkpoint
from audio_thinker.cli import compose_run
from audio_thinker.eval.eval_policy import eval_model_config, folder_model_config, load_eval_policy
from audio_thinker.eval.run import evaluate
from audio_thinker.models.hf_export import export_main
from tests.helpers.configs import compose_train
from tests.helpers.rewards import LENGTH_REWARD
from tests.helpers.training import fake_run

EVERY_STEP = ["trainer.max_steps=2", "callbacks.model_checkpoint.every_n_train_steps=1", "callbacks.export=null"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-step full fine-tuning run: step000001.ckpt, step000002.ckpt, last.ckpt and checkpoint-1/, checkpoint-2/."""
    out = tmp_path_factory.mktemp("run")
    cfg = compose_train(out, [*EVERY_STEP, "optimizer.lr=1e-2", "validation=null", *LENGTH_REWARD])
    # As the CLI's run leaves it (export and eval rebuild the model from it), less the test's own reward term:
    # a run config naming targets outside the package is refused by export and eval (models.run_config).
    settings = OmegaConf.masked_copy(cfg, list(cfg.keys() - {"hydra", "reward"}))
    (out / ".hydra").mkdir()
    (out / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(settings))
    train_module.train(cfg)
    return out


def _eval_policy(ckpt_path: str, out) -> torch.nn.Module:
    """What `audio-thinker eval eval.ckpt_path=<ckpt_path>` evaluates."""
    weights = eval_weights(ckpt_path)
    model_cfg = eval_model_config(compose_run(out, [], "eval").model, ckpt_path)
    return load_eval_policy(folder_model_config(model_cfg, weights), weights.adapter, weights.ckpt_path)


def test_a_folder_names_its_steps_lightning_checkpoint_or_says_what_to_pass(run, tmp_path):
    folders = run / "checkpoints"
    assert {p.name for p in folders.iterdir()} >= {"checkpoint-1", "checkpoint-2", "step000001.ckpt", "last.ckpt"}
    first, second = (load_file(folders / f"checkpoint-{n}" / "model.safetensors") for n in (1, 2))
    assert any(not torch.equal(first[k], second[k]) for k in first)  # each folder holds its own step's weights
    assert lightning_checkpoint(str(folders / "checkpoint-1")) == str(folders / "step000001.ckpt")
    assert lightning_checkpoint("last") == "last" and lightning_checkpoint(None) is None
    copy = shutil.copytree(folders, tmp_path / "checkpoints")
    (copy / "step000002.ckpt").unlink()  # last.ckpt recorded step 2 too
    assert saved_step(copy / "last.ckpt") == 2
    assert lightning_checkpoint(str(copy / "checkpoint-2")) == str(copy / "last.ckpt")
    (copy / "step000001.ckpt").unlink()
    with pytest.raises(CheckpointPathError, match=r"the Lightning checkpoint of step 1 .* has last.ckpt\. Pass"):
        lightning_checkpoint(str(copy / "checkpoint-1"))
    with pytest.raises(CheckpointPathError, match="a folder, not a checkpoint"):
        lightning_checkpoint(str(tmp_path))


def test_training_resumes_from_a_checkpoint_folder(run, tmp_path):
    cfg = compose_train(tmp_path, ["trainer.max_steps=3", f"ckpt_path={run}/checkpoints/checkpoint-2", *EVERY_STEP[1:]])
    train_module.train(cfg)
    written = sorted(p.name for p in (tmp_path / "checkpoints").glob("step*.ckpt"))
    assert written == ["step000003.ckpt"]  # steps 1 and 2 came from the checkpoint, not trained again


def test_export_takes_a_checkpoint_folder(run, tmp_path, capsys):
    assert export_main([str(run / "checkpoints" / "checkpoint-2"), "--out", str(tmp_path / "export")]) == 0
    assert f"exported {run / 'checkpoints' / 'step000002.ckpt'}" in capsys.readouterr().out
    assert (tmp_path / "export" / "model.safetensors").is_file()


def test_eval_loads_a_folder_by_its_checkpoint_or_by_its_own_weights(run, tmp_path):
    folders = run / "checkpoints"
    assert eval_weights(str(folders / "checkpoint-1")) == EvalWeights(ckpt_path=str(folders / "step000001.ckpt"))
    by_ckpt = _eval_policy(str(folders / "checkpoint-1"), tmp_path / "e1")
    copy = shutil.copytree(run, tmp_path / "run")
    for ckpt in (copy / "checkpoints").glob("*.ckpt"):
        ckpt.unlink()
    folder = copy / "checkpoints" / "checkpoint-1"
    assert eval_weights(str(folder)) == EvalWeights(model_path=str(folder))
    by_folder = _eval_policy(str(folder), tmp_path / "e2")
    expected, loaded = by_ckpt.state_dict(), by_folder.state_dict()
    assert expected.keys() == loaded.keys() and all(torch.equal(expected[k], loaded[k]) for k in expected)
    out = tmp_path / "eval"
    cfg = compose_run(
        out, [f"eval.ckpt_path={folder}", "eval.budgets=[]", "eval.max_new_tokens=4", "data.val.size=2"], "eval"
    )
    assert evaluate(cfg)["n"] > 0 and (out / "metrics.json").is_file()


def test_eval_puts_a_lora_folders_adapter_on_the_runs_base(tmp_path):
    policy, ckpt = fake_run(tmp_path, ["quant=lora", "model.dtype=float32"], step=7)
    folder = ckpt.parent / "checkpoint-7"
    policy.model.save_pretrained(folder)
    ckpt.unlink()  # only the Hugging Face folder is left
    weights = eval_weights(str(folder))
    assert weights == EvalWeights(adapter=str(folder))
    model_cfg = eval_model_config(compose_run(tmp_path / "e", [], "eval").model, str(folder))
    assert model_cfg.lora is not None  # the run's own config: LoRA, which the folder's adapter replaces
    loaded = load_eval_policy(folder_model_config(model_cfg, weights), adapter=weights.adapter)
    expected = {k: v for k, v in policy.state_dict().items() if "lora_" in k}
    assert expected and all(torch.equal(v, loaded.state_dict()[k]) for k, v in expected.items())
    with pytest.raises(ValueError, match="set eval.adapter or eval.ckpt_path, not both"):
        folder_model_config(model_cfg, weights, adapter=str(folder))
