"""A reward suite: named terms, computed one by one, combined into one scalar per completion."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from audio_thinker.rewards.base import RewardAbort, RewardInputs, RewardTerm
from audio_thinker.rewards.combiners import WeightedSum
from audio_thinker.rewards.function import wrap_callable
from audio_thinker.user_code import locate, make_importable


class RewardError(RuntimeError):
    """A reward term failed; the message names the term and the example."""


@dataclass
class RewardResult:
    """Per-term values [N] (NaN = not applicable) and the combined total [N]."""

    terms: dict[str, torch.Tensor]
    total: torch.Tensor


class RewardSuite:
    """Named reward terms plus a combiner. Keys become term names (and TensorBoard tags `reward/<key>`)."""

    def __init__(self, terms: Mapping[str, RewardTerm], combiner=None, paths: Sequence[str] = ()) -> None:
        # `paths` (folders of the user's reward modules) are put on sys.path by `build_reward_suite`, before the
        # terms import; accepted here so `instantiate(cfg.reward)` builds the same suite.
        make_importable(paths, key="reward.paths")
        if not terms:
            raise ValueError("a reward suite needs at least one term (reward.terms is empty)")
        self.terms = dict(terms)
        for key, term in self.terms.items():
            if isinstance(term, Mapping):  # a config node without `_target_`, e.g. judge= on a suite without judges
                raise TypeError(
                    f"reward.terms.{key} has no `_target_`: it is settings ({sorted(term)}), not a reward term; "
                    "judge=... only applies to suites with judge terms, e.g. reward=audio_thinker"
                )
            term.name = key
        self.combiner = combiner or WeightedSum()

    def setup(self) -> None:
        """Each term's start-up check (a judge endpoint answers, a judge model loads), before training starts."""
        for term in self.terms.values():
            term.setup()

    def __call__(self, inputs: RewardInputs) -> RewardResult:
        values = {name: _score_or_explain(term, inputs) for name, term in self.terms.items()}
        weights = {name: term.weight for name, term in self.terms.items()}
        total = self.combiner(values, weights)
        if not torch.isfinite(total).all():
            bad = int((~torch.isfinite(total)).nonzero()[0])
            raise RewardError(
                f"reward total is {total[bad].item()} for example id={inputs.examples[bad].id!r} "
                f"(terms: { {k: v[bad].item() for k, v in values.items()} }); a term returned inf"
            )
        return RewardResult(values, total)


def _score_or_explain(term: RewardTerm, inputs: RewardInputs) -> torch.Tensor:
    """Run a term; if it raises, re-run it per completion to name the example it fails on."""
    try:
        return term(inputs)
    except RewardAbort:
        raise
    except Exception as batch_error:
        for index in range(len(inputs)):
            try:
                term(inputs.subset(index))
            except Exception as error:
                example = inputs.examples[index]
                raise RewardError(
                    f"reward term '{term.name}' ({_label(term)}) failed on example id={example.id!r} "
                    f"(completion {index}: {inputs.completions[index].text[:200]!r}): {error!r}"
                ) from error
        raise RewardError(
            f"reward term '{term.name}' ({_label(term)}) failed on the batch of examples "
            f"{sorted({e.id for e in inputs.examples})}: {batch_error!r}"
        ) from batch_error


def _label(term: RewardTerm) -> str:
    """What a term runs: its class, or the user's function it wraps."""
    return getattr(term, "label", type(term).__name__)


def build_reward_suite(config: DictConfig) -> RewardSuite:
    """The suite a `reward` config describes. A term whose `_target_` is a plain function or a callable class (not a
    `RewardTerm`) is wrapped by its shape (`wrap_callable`). `paths` (directories) are made importable first."""
    make_importable(config.get("paths") or (), key="reward.paths")
    if get_object(config._target_) is not RewardSuite:
        own = OmegaConf.masked_copy(config, [key for key in config if key != "paths"])
        return instantiate(own)  # a suite class of the user's own: built as configured
    terms = {name: build_term(name, node) for name, node in config.terms.items() if node is not None}
    combiner = instantiate(config.combiner) if config.get("combiner") is not None else None
    return RewardSuite(terms, combiner, config.get("paths") or ())


def build_term(name: str, node: DictConfig) -> RewardTerm:
    """One term from its config: a `RewardTerm` class is instantiated; a function or other callable is wrapped."""
    if "_target_" not in node:
        raise ValueError(f"reward.terms.{name} has no _target_ (a RewardTerm class or a reward function)")
    try:
        target = locate(node._target_)
    except Exception as err:  # an ImportError, or whatever the module raised while importing
        raise ValueError(
            f"reward.terms.{name}: cannot import its _target_ {node._target_!r} ({err}); a module of your own must be "
            "in the directory you run from or in a folder listed in reward.paths"
        ) from err
    if inspect.isclass(target) and issubclass(target, RewardTerm) or not callable(target):
        return instantiate(node)
    options = OmegaConf.to_container(node, resolve=True)
    options.pop("_target_")
    weight = options.pop("weight", 1.0)
    return wrap_callable(name, target, weight, instantiate(options, _convert_="all"))
