"""A run folder's `.hydra/config.yaml` is data: `export` and `eval eval.ckpt_path=...` build nothing it names but
our own model loader, however the target is reached (directly, through an interpolation, from anywhere in the
tree); targets outside `model` are never built at all."""

from __future__ import annotations

import pickle
import re

import pytest
import torch
from omegaconf import OmegaConf

from audio_thinker.cli import compose_run, main
from audio_thinker.eval.eval_policy import load_eval_policy
from audio_thinker.eval.run import evaluate
from audio_thinker.models.run_config import UnsafeConfigError, check_model_config, read_run_config
from tests.helpers.configs import CONFIGS

TINY = {"_target_": "audio_thinker.models.loading.load_policy", "path": "tiny-qwen2-audio"}
TINY_YAML = "  _target_: audio_thinker.models.loading.load_policy\n  path: tiny-qwen2-audio\n"


class _Payload:
    """Unpickled with weights_only=False, it creates the file `victim`: proof that code from the run folder ran."""

    def __init__(self, victim) -> None:
        self.victim = str(victim)

    def __reduce__(self):
        return open, (self.victim, "w")


def _run_folder(root, config: str | dict):
    """A run folder whose checkpoint is a stub and whose `.hydra/config.yaml` is `config` (text or a mapping)."""
    ckpt = root / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, ckpt)
    (root / "run" / ".hydra").mkdir()
    text = config if isinstance(config, str) else OmegaConf.to_yaml({"model": config})
    (root / "run" / ".hydra" / "config.yaml").write_text(text)
    return ckpt


# Each attack: the config text (VICTIM: a file only the target's call creates; PAYLOAD: a pickle that creates it)
# and what the refusal names. The first four ran their code through `export` and `eval` before round two.
ATTACKS = {
    "torch.load through an interpolation": (
        "evil: {_target_: torch.load, f: PAYLOAD, weights_only: false}\nmodel:\n" + TINY_YAML + "  lora: ${evil}\n",
        "model.lora._target_='torch.load'",
    ),
    "builtins.open through a nested interpolation": (
        "s: {deep: {_target_: builtins.open, file: VICTIM, mode: w}}\nmodel:\n" + TINY_YAML + "  lora: ${s.deep}",
        "model.lora._target_='builtins.open'",
    ),
    "os.makedirs as the whole model": (
        "evil: {_target_: os.makedirs, name: VICTIM}\nmodel: ${evil}\n",
        "model._target_='os.makedirs'",
    ),
    "pathlib.Path.touch in a list, through oc.decode": (
        "model:\n" + TINY_YAML + "  lora:\n    _target_: peft.LoraConfig\n    target_modules:\n"
        "    - \"${oc.decode:'{_target_: pathlib.Path.touch, _args_: [{_target_: pathlib.Path, _args_: [VICTIM]}]}'}\"",
        "model.lora.target_modules[0]._target_='pathlib.Path.touch'",
    ),
    "an escaped interpolation that resolves to one": (
        "evil: {_target_: builtins.open, file: VICTIM, mode: w}\nmodel:\n" + TINY_YAML + "  lora: \\${evil}\n",
        "model.lora still holds an interpolation",
    ),
}


def _export(ckpt, tmp_path):
    main(["export", str(ckpt), "--out", str(tmp_path / "out")])


def _eval(ckpt, tmp_path):
    evaluate(compose_run(tmp_path / "eval", [f"eval.ckpt_path={ckpt}"], name="eval"))


@pytest.mark.parametrize("command", [_export, _eval], ids=["export", "eval"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_run_folder_config_runs_no_code_by_any_path(tmp_path, attack, command):
    victim, payload = tmp_path / "victim", tmp_path / "payload.pkl"
    payload.write_bytes(pickle.dumps(_Payload(victim)))
    text, refused = ATTACKS[attack]
    ckpt = _run_folder(tmp_path, text.replace("VICTIM", str(victim)).replace("PAYLOAD", str(payload)))
    with pytest.raises(UnsafeConfigError, match=re.escape(refused)) as err:
        command(ckpt, tmp_path)
    assert str(ckpt.parent.parent / ".hydra" / "config.yaml") in str(err.value)
    assert not victim.exists()


def test_every_packaged_config_passes_as_a_run_config(tmp_path):
    """No false alarm: the default run and every experiment, saved as Hydra saves them, read back unchanged."""
    experiments = [[f"experiment={p.stem}"] for p in sorted((CONFIGS / "experiment").glob("*.yaml"))]
    for overrides in [[], ["quant=lora", "reward=audio_thinker", "judge=endpoint"], *experiments]:
        cfg = compose_run(tmp_path, overrides)
        path = tmp_path / "config.yaml"
        path.write_text(OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])))
        _, model = read_run_config(path)
        assert model == OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True)), overrides


@pytest.mark.parametrize("command", [_export, _eval], ids=["export", "eval"])
def test_a_target_outside_model_is_never_built(tmp_path, command):
    """Only `model` is built from a run's config: anything else, a user's own reward or an attacker's call, is
    text. The command reads the config without refusing it, and the call never runs."""
    victim = tmp_path / "victim"
    text = f"reward:\n  terms:\n    evil: {{_target_: builtins.open, file: {victim}, mode: w}}\nmodel:\n" + TINY_YAML
    run_cfg, model = read_run_config(_write(tmp_path / "config.yaml", text))
    assert run_cfg.reward.terms.evil._target_ == "builtins.open" and model._target_ == TINY["_target_"]
    try:
        command(_run_folder(tmp_path, text), tmp_path)
    except UnsafeConfigError:
        raise
    except BaseException:  # past the config; the stub checkpoint may stop the command there
        pass
    assert not victim.exists()


def _write(path, text: str):
    path.write_text(text)
    return path


# -- round one, moved here from tests/integration/test_export.py ------------------------------------------------
@pytest.mark.parametrize(
    ("model", "key"),
    [
        ({"_target_": "builtins.open", "file": "VICTIM", "mode": "w"}, "model._target_='builtins.open'"),
        ({**TINY, "lora": {"_target_": "os.system", "command": "touch VICTIM"}}, "model.lora._target_='os.system'"),
        ({**TINY, "attn_implementation": "kernels-community/flash-attn"}, "model.attn_implementation"),
    ],
)
def test_export_rebuilds_the_model_only_from_our_loaders(tmp_path, capsys, model, key):
    victim = tmp_path / "victim.txt"
    model = OmegaConf.to_container(OmegaConf.create(model))
    for node in (model, model.get("lora") or {}):
        for name, value in node.items():
            if isinstance(value, str):
                node[name] = value.replace("VICTIM", str(victim))
    ckpt = _run_folder(tmp_path, model)
    with pytest.raises(UnsafeConfigError, match=re.escape(key)) as err:
        main(["export", str(ckpt), "--out", str(tmp_path / "out")])
    assert str(tmp_path / "run" / ".hydra" / "config.yaml") in str(err.value) and not victim.exists()
    assert f"model config: {tmp_path / 'run' / '.hydra' / 'config.yaml'}" in capsys.readouterr().out


def test_trust_remote_code_in_a_run_config_needs_the_command_line_flag(tmp_path):
    ckpt = _run_folder(tmp_path, {**TINY, "trust_remote_code": True})
    with pytest.raises(UnsafeConfigError, match="refused unless you pass --trust-remote-code"):
        main(["export", str(ckpt), "--out", str(tmp_path / "out")])
    node = OmegaConf.load(tmp_path / "run" / ".hydra" / "config.yaml").model
    check_model_config(node, "cfg", trust_remote_code=True)  # with the flag, the check lets it through


def test_eval_from_a_checkpoint_applies_the_same_allow_list(tmp_path):
    ckpt = _run_folder(tmp_path, TINY)
    exec_node = {"_target_": "builtins.exec", "source": "1"}
    with pytest.raises(UnsafeConfigError, match="builtins.exec"):  # the eval config's own model
        load_eval_policy(OmegaConf.create(exec_node), ckpt_path=str(ckpt), run_config=None)
    unsafe = _run_folder(tmp_path / "other", exec_node)
    with pytest.raises(UnsafeConfigError, match=r"other/run/\.hydra/config\.yaml: model\._target_='builtins.exec'"):
        load_eval_policy(OmegaConf.create(TINY), ckpt_path=str(unsafe))  # the run's config beside the checkpoint
