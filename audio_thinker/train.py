"""Compose the pieces a Hydra config names and run `trainer.fit`."""

from __future__ import annotations

import logging

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from audio_thinker.callbacks.progress import StepProgressBar
from audio_thinker.callbacks.resume import prepare_resume
from audio_thinker.callbacks.reward import RewardCallback
from audio_thinker.config_checks import check_train_config
from audio_thinker.data.prompt_length import fit_datamodule
from audio_thinker.jobs import resume_path, set_cpu_threads
from audio_thinker.loggers import finish_runs
from audio_thinker.losses.config import build_loss, scale_rewards_of
from audio_thinker.models.loading import build_policy
from audio_thinker.module import GRPOModule
from audio_thinker.redaction import redacted
from audio_thinker.rewards.suite import RewardSuite, build_reward_suite
from audio_thinker.rollout.engine import RolloutEngine
from audio_thinker.rollout.server_start import start_rollout_server
from audio_thinker.rollout.vllm_engine import VLLMEngine
from audio_thinker.run_names import register_resolver
from audio_thinker.user_code import make_importable

register_resolver()  # configs composed in code (tests, tools) name sweep folders like the CLI

log = logging.getLogger(__name__)


def instantiate_dict(nodes: DictConfig | None) -> list:
    """Instantiate a keyed dict of `_target_` nodes (callbacks, loggers); null entries are switched off."""
    return [instantiate(node) for node in (nodes or {}).values() if node is not None]


def build_module(cfg: DictConfig) -> GRPOModule:
    """Policy (+ reference), loss and optimizer as one LightningModule."""
    # _convert_="all": plain lists/dicts in optimizer state, so checkpoints load with torch's weights_only=True.
    scheduler = instantiate(cfg.scheduler, _convert_="all") if cfg.get("scheduler") else None
    optimizer = instantiate(cfg.optimizer, _convert_="all")
    validator = instantiate(cfg.validation) if cfg.get("validation") else None
    policy = build_policy(cfg.model, str(cfg.trainer.get("accelerator", "auto")))  # dtype for the training device
    return GRPOModule(policy, build_loss(cfg.loss), optimizer, scheduler, validator)


def build_trainer(cfg: DictConfig, suite: RewardSuite | None = None, engine: RolloutEngine | None = None) -> L.Trainer:
    """The Lightning trainer with the rollout and reward callbacks first, then the configured extras (`suite`: the
    reward suite, already set up; built from `cfg.reward` when not given; `engine`: the rollout engine, already
    started, that the rollout callback then uses instead of building its own).

    The reward callback is the rollout callback's scorer: at a generation's first micro-step the rollout callback
    samples, has the rollout scored and hands it to the module; the reward callback, listed after it, then logs
    that generation's rewards at each of its steps.
    """
    if suite is None:
        suite = build_reward_suite(cfg.reward)
        suite.setup()  # a judge endpoint that is down, or a judge model that cannot load, fails here, before step 1
    samples_every = cfg.rollout.get("log_samples_every_n_steps", 50)  # the judge's beside the completions table
    scoring = RewardCallback(suite, scale_rewards_of(cfg.loss), log_samples_every_n_steps=samples_every)
    callbacks = [instantiate(cfg.rollout, scorer=scoring, started_engine=engine), scoring]
    callbacks += instantiate_dict(cfg.get("callbacks"))
    if cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar callback when the bar is off
        callbacks.append(StepProgressBar())
    loggers = instantiate_dict(cfg.get("logger"))
    no_validation = {} if cfg.get("validation") else {"limit_val_batches": 0}  # validation=null: no val loop at all
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **no_validation)
    settings = {key: cfg[key] for key in cfg if key != "hydra"}  # the run's settings, not Hydra's own
    for logger in trainer.loggers:  # so TensorBoard's HParams view, MLflow and W&B compare runs
        logger.log_hyperparams(redacted(OmegaConf.to_container(OmegaConf.create(settings), resolve=True)))
    return trainer


class _DropLitLoggerTip(logging.Filter):
    """Lightning advertises its hosted logger on every run; our logger configs already cover that need."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def _fit(cfg: DictConfig, engine: VLLMEngine | None) -> tuple[GRPOModule, L.Trainer]:
    """Data, rewards and policy, then `trainer.fit`; `engine`: the vLLM engine whose server already started."""
    datamodule = instantiate(cfg.data)
    suite = build_reward_suite(cfg.reward)
    suite.setup()  # a judge endpoint that is down fails in seconds, not after the policy's minutes of loading
    if engine is not None and engine.server.on_gpu:  # vLLM sizes its share from the free memory it finds:
        engine.wait_ready()  # ready before the policy takes any
    module = build_module(cfg)
    if engine is not None:
        engine.wait_ready()  # on a CPU its start overlapped the model load (on a GPU it answered already)
    fit_datamodule(
        datamodule,
        module.policy,
        instantiate(cfg.rollout.prompt),
        cfg.rollout.max_new_tokens,
        cfg.data.get("max_audio_seconds"),
    )
    trainer = build_trainer(cfg, suite, engine)
    # A job restarted by Slurm or torchrun resumes from `last` by itself; stale or unreadable checkpoints are handled.
    trainer.fit(module, datamodule=datamodule, ckpt_path=prepare_resume(trainer, resume_path(cfg.get("ckpt_path"))))
    return module, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one GRPO training and return the last logged metrics (`audio_thinker.jobs.objective_value` picks one)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLitLoggerTip())
    make_importable()  # a `_target_` of the user's own (my_rewards.brevity) imports from where they run
    check_train_config(cfg)  # every cheap part, before the model loads
    set_cpu_threads(cfg.get("cpu_threads"))
    L.seed_everything(cfg.seed, workers=True)
    engine = start_rollout_server(cfg)  # engine=vllm: its server first, before anything takes GPU memory
    try:
        module, trainer = _fit(cfg, engine)
    finally:
        if engine is not None:
            engine.close()  # a failure or Ctrl-C before training leaves no server behind (fit's teardown closed it)
    finish_runs(trainer.loggers)
    module.check_trained()  # a run whose every step was skipped exits non-zero (and exported nothing)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    log.info("finished at step %d: %s", trainer.global_step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    if len(module.val_history) > 1:
        (first_step, before), (last_step, after) = module.val_history[0], module.val_history[-1]
        log.info("held-out val/accuracy: %.3f at step %d -> %.3f at step %d", before, first_step, after, last_step)
    return metrics
