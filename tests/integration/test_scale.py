"""QLoRA on the CPU, strategy checks, and DDP on two CPU processes (gloo)."""

from __future__ import annotations

import functools

import pytest
import torch
from hydra.utils import instantiate

from audio_thinker.callbacks.reward import RewardCallback
from audio_thinker.config_checks import check_combination
from audio_thinker.losses.config import build_loss
from audio_thinker.models.four_bit import packed_4bit_layers
from audio_thinker.train import build_module, build_trainer
from tests.helpers.configs import FAST, FAST_SYNTHETIC
from tests.helpers.rewards import LENGTH_REWARD
from tests.helpers.runs import run_cli
from tests.helpers.training import snapshot, tiny_rollout


def test_qlora_trains_adapters_on_a_4bit_base_and_the_reference_is_that_base(train_cfg):
    import bitsandbytes as bnb

    cfg = train_cfg(["quant=qlora_nf4", "trainer.max_steps=1", "optimizer.lr=1e-2", *LENGTH_REWARD])
    module = build_module(cfg)
    hf = module.policy.hf_model
    assert isinstance(hf.model.language_model.layers[0].self_attn.q_proj.base_layer, bnb.nn.Linear4bit)
    assert not isinstance(hf.model.audio_tower.layers[0].fc1, bnb.nn.Linear4bit)  # audio path kept whole
    assert module.reference is None
    before = snapshot(module)
    rollout = tiny_rollout(module)
    with torch.no_grad(), module.policy.model.disable_adapter():
        base_before = module.policy.completion_logps(rollout.encoding, rollout.completion_ids, rollout.completion_mask)
    build_trainer(cfg).fit(module, datamodule=instantiate(cfg.data))
    changed = {n for n, p in module.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_B" in n for n in changed)  # only adapters moved (A has zero grad while B = 0)
    with torch.no_grad():
        ref = module.reference_logps(rollout)
        policy = module.policy_logps(rollout)
    assert torch.allclose(ref, base_before)  # reference = the quantized base, adapters off, untouched by training
    assert not torch.allclose(ref, policy)


def test_no_4bit_layer_is_in_the_cpu_inference_layout_in_a_training_step(train_cfg, monkeypatch):
    """bitsandbytes packs a `Linear4bit` for CPU inference at an eval-mode no-grad forward (generation), on a CPU with
    AVX512-BF16 (`models.four_bit`). Every layer is made to believe it runs on one, so the test holds on any CPU."""
    import bitsandbytes as bnb

    monkeypatch.setattr(bnb.nn.modules, "has_avx512bf16", lambda: True)
    assert bnb.nn.Linear4bit(64, 64).support_avx512bf16_for_cpu  # a layer built now would pack
    cfg = train_cfg(["quant=qlora_nf4", "trainer.max_steps=1", *LENGTH_REWARD])
    module = build_module(cfg)
    forwards = {"generation": 0, "training": 0}

    def check(layer: torch.nn.Module, args: tuple, name: str) -> None:
        if torch.is_grad_enabled():  # a forward that backpropagates (or recomputes one under checkpointing)
            forwards["training"] += 1
            assert not packed_4bit_layers(layer), f"{name} is in the inference-only CPU layout in a training forward"
        elif not layer.training:  # where bitsandbytes packs
            forwards["generation"] += 1

    for name, layer in module.named_modules():
        if isinstance(layer, bnb.nn.Linear4bit):
            layer.register_forward_pre_hook(functools.partial(check, name=name))
    build_trainer(cfg).fit(module, datamodule=instantiate(cfg.data))
    assert forwards["generation"] and forwards["training"]  # the step sampled, then trained, through 4-bit layers
    rollout = tiny_rollout(module)  # generation still works after the step...
    assert rollout.completion_mask.any() and not packed_4bit_layers(module)
    model, scored = module.policy.hf_model, (rollout.encoding, rollout.completion_ids, rollout.completion_mask)
    with torch.no_grad():
        model.eval()
        sampling = module.policy.completion_logps(*scored)
        model.train()
    training = module.policy.completion_logps(*scored)
    assert torch.allclose(sampling, training.detach())  # ...and computes what a training forward computes


def test_quantization_without_lora_fails_with_what_to_do(train_cfg):
    cfg = train_cfg(["quant=qlora_nf4", "model.lora=null"])
    with pytest.raises(Exception, match="4-bit weights cannot be trained directly"):  # Hydra wraps the ValueError
        build_module(cfg)


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed_zero3"])
def test_4bit_with_sharded_parameters_fails_at_start_naming_the_alternative(strategy, train_cfg):
    cfg = train_cfg(["quant=qlora_nf4", f"strategy={strategy}"])
    with pytest.raises(ValueError, match="use strategy=ddp"):
        check_combination(cfg)


@pytest.mark.parametrize("strategy", ["auto", "ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"])
def test_every_strategy_file_composes(strategy, train_cfg):
    cfg = train_cfg([f"strategy={strategy}"])
    check_combination(cfg)  # full precision: every strategy is allowed
    assert cfg.trainer.strategy == "auto" or "_target_" in cfg.trainer.strategy


def test_ddp_on_two_cpu_processes_keeps_ranks_identical(tmp_path):
    result = run_cli(
        "train",
        *FAST,
        *FAST_SYNTHETIC,
        "strategy=ddp",
        "trainer.devices=2",
        "trainer.max_steps=2",
        "optimizer.lr=1e-2",
        *LENGTH_REWARD,
        f"hydra.run.dir={tmp_path}",
        "callbacks.model_checkpoint=null",
        "+callbacks.fingerprint._target_=tests.helpers.fingerprint.WeightFingerprint",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    prints = sorted(tmp_path.glob("weights_rank*.pt"))
    assert [p.name for p in prints] == ["weights_rank0.pt", "weights_rank1.pt"]
    rank0, rank1 = (torch.load(p, weights_only=True) for p in prints)
    assert rank0["step"] == rank1["step"] == 2
    assert rank0["initial"] != rank0["final"]  # the weights did train...
    assert rank0["final"] == rank1["final"]  # ...and identically on both ranks
    assert rank0["examples"] != rank1["examples"]  # each rank rolled out its own prompts


def test_training_the_projector_under_lora_points_to_modules_to_save(train_cfg):
    cfg = train_cfg(["quant=lora", "model.train_projector=true"])
    with pytest.raises(Exception, match="modules_to_save"):
        build_module(cfg)


def test_dr_grpo_is_the_whole_recipe(train_cfg):
    def scale_rewards(cfg) -> str:
        return next(cb for cb in build_trainer(cfg).callbacks if isinstance(cb, RewardCallback)).scale_rewards

    cfg = train_cfg(["loss=dr_grpo"])
    assert build_loss(cfg.loss).aggregation == "dr_grpo"
    assert scale_rewards(cfg) == "none"  # advantages not divided by the std
    assert scale_rewards(train_cfg()) == "group"
