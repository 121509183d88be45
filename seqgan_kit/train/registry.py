"""The algorithm registry: ``algorithm = "NAME"`` in a recipe selects a registered trainer.

A training module registers its trainer class with the config dataclass of its own recipe table::

    @register_algorithm("seqgan", config=SeqGANConfig)
    class SeqGANTrainer(Trainer):                           # seqgan_kit.train.trainer
        requires = {"generator": {...}, "discriminator": {...}}  # capabilities per model role
        def __init__(self, exp: Experiment) -> None: ...   # build models and optimizers on ``exp``
        def phases(self) -> list[tuple[str, PhaseFn]]: ...  # what runs after the shared MLE pretraining
        @staticmethod
        def check(cfg: ExperimentConfig) -> None: ...       # optional: checks across tables

A trainer class that declares no ``requires`` needs nothing of its generator (when it builds one) and builds no
discriminator.

The runner and the config loader name no algorithm: they ask this registry. ``pretrain=False`` skips the
shared MLE stage and ``uses_generator=False`` builds no generator (an algorithm that trains an encoder). The
built-in algorithms are imported on first use; one registered elsewhere (a test, a plugin) works the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UserError

BUILTIN_MODULES = ("seqgan_kit.train.mle", "seqgan_kit.train.seqgan", "seqgan_kit.train.word2vec",
                   "seqgan_kit.train.skipthought", "seqgan_kit.train.gumbel",
                   "seqgan_kit.train.maskgan", "seqgan_kit.train.leakgan", "seqgan_kit.train.textgan",
                   "seqgan_kit.train.maligan", "seqgan_kit.train.rankgan")

PhaseFn = Callable[[int], None]
"""A phase: called with the number of units (epochs, iterations) already done; runs the rest."""


@dataclass(frozen=True)
class AlgorithmSpec:
    """A registered algorithm: its trainer class, its recipe table and whether MLE pretraining runs first."""

    name: str
    trainer: type
    config: type | None
    table: str
    pretrain: bool
    uses_generator: bool
    distributed: bool = True
    """Whether several torchrun ranks can train it (False: it refuses WORLD_SIZE > 1 up front)."""

    @property
    def requires(self) -> dict[str, frozenset[str]]:
        """Model role -> the capabilities the algorithm needs of its kind (the trainer's ``requires``); only
        the roles listed are built. The shared MLE stage needs a language model of the generator."""
        declared = getattr(self.trainer, "requires", None)
        out = {role: frozenset(needs) for role, needs in (declared or {}).items()}
        if self.uses_generator:
            out.setdefault("generator", frozenset())
        if self.pretrain:
            out["generator"] = out["generator"] | {"language_model"}
        return out


_ALGORITHMS: dict[str, AlgorithmSpec] = {}
_builtins_loaded = False


def register_algorithm(name: str, config: type | None = None, table: str | None = None, pretrain: bool = True,
                       uses_generator: bool = True, distributed: bool = True):
    """Class decorator registering a trainer as ``algorithm = name`` (its table ``[table]``, default ``name``).

    ``pretrain``: run the shared MLE stage first; ``uses_generator``: the run builds a generator (implied by
    ``pretrain``); ``distributed``: several torchrun ranks can train it."""

    def wrap(trainer: type) -> type:
        _ALGORITHMS[name] = AlgorithmSpec(name, trainer, config, table or name, pretrain, uses_generator or pretrain,
                                          distributed)
        return trainer

    return wrap


def algorithms() -> dict[str, AlgorithmSpec]:
    """Every registered algorithm (built-ins loaded)."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
    return dict(_ALGORITHMS)


def get_algorithm(name: str) -> AlgorithmSpec:
    """The algorithm ``name``; UserError listing the registered ones otherwise."""
    known = algorithms()
    if name not in known:
        raise UserError(f"algorithm: unknown algorithm {name!r} (registered: {', '.join(sorted(known))})")
    return known[name]
