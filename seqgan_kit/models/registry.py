"""Model registries: ``generator.kind`` and ``discriminator.kind`` name a registered model class.

A model class is registered with its config dataclass::

    @register("generator", "lstm", LSTMGeneratorConfig)
    class LSTMGenerator(SequenceGenerator): ...

and provides two methods:

- ``from_config(cfg, **sizes)`` (classmethod): build from the recipe table (``sizes`` are what the task
  decides: ``vocab_size``, ``max_len`` and the special tokens for a generator; ``vocab_size``, ``seq_len`` and
  ``pad_token`` for a discriminator).
- ``config()``: the constructor arguments, stored in every checkpoint beside the kind
  (:func:`describe`), so :func:`rebuild` makes the same module from a checkpoint alone.

and declares, as the class attribute ``capabilities``, what an algorithm may ask of it (see
:data:`CAPABILITIES`): an algorithm's trainer lists what it ``requires`` of each role, and a recipe pairing it
with a kind that lacks one is refused when the recipe is validated.

The built-in kinds are registered when their modules are first needed; a kind registered elsewhere (a test, a
plugin) works the same way.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import UserError

ROLES = ("generator", "discriminator", "infill_discriminator")
BUILTIN_MODULES = (
    "seqgan_kit.models.lstm_generator",
    "seqgan_kit.models.discriminator",
    "seqgan_kit.models.rmc_generator",
    "seqgan_kit.models.relgan_discriminator",
    "seqgan_kit.models.maskgan",
)
DEFAULT_KIND = {"generator": "lstm", "discriminator": "cnn"}

CAPABILITIES = {
    "language_model": "an autoregressive language model built from its recipe table alone: teacher-forced "
                      "logits, log-likelihoods, sampling (the shared MLE stage trains it)",
    "gumbel": "the Gumbel-softmax relaxed rollout (``gumbel_rollout``)",
    "prefix_states": "the recurrent state after every prefix in one teacher-forced pass (the batched Monte "
                     "Carlo rollout)",
    "lstm_weights": "one-layer LSTM weights that MaskGAN's in-filler and discriminator start from",
    "infilling": "fills the masked positions of a sequence (MaskGAN's seq2seq)",
    "prob_real": "P(real) of a batch of token sequences (SeqGAN's reward)",
    "gan_logits": "GAN logits of token ids and of relaxed one-hots (the Gumbel-softmax GANs)",
}
"""What a model kind can declare in its ``capabilities`` (name -> meaning)."""


@dataclass(frozen=True)
class ModelKind:
    """One registered model: its role, name, class and config dataclass."""

    role: str
    name: str
    cls: type[nn.Module]
    config: type

    @property
    def capabilities(self) -> frozenset[str]:
        """What the kind declares it can do (its class's ``capabilities``; none when it declares nothing)."""
        return frozenset(getattr(self.cls, "capabilities", ()))


_REGISTRY: dict[str, dict[str, ModelKind]] = {role: {} for role in ROLES}
_builtins_loaded = False


def register(role: str, name: str, config: type):
    """Class decorator: register a model class as ``role`` kind ``name`` configured by ``config``."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; expected one of {ROLES}")

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        _REGISTRY[role][name] = ModelKind(role, name, cls, config)
        cls.kind = name
        return cls

    return wrap


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def kinds(role: str) -> dict[str, ModelKind]:
    """The registered kinds of ``role`` (built-ins loaded)."""
    _load_builtins()
    return dict(_REGISTRY[role])


def get_kind(role: str, name: str) -> ModelKind:
    """The registered ``role`` kind ``name``; ValueError listing the known kinds otherwise."""
    known = kinds(role)
    if name not in known:
        raise ValueError(f"unknown {role} kind {name!r} (registered: {', '.join(sorted(known))})")
    return known[name]


def kinds_with(role: str, needs: frozenset[str] | set[str]) -> list[str]:
    """The registered ``role`` kinds that have every capability in ``needs``, sorted."""
    return sorted(name for name, kind in kinds(role).items() if set(needs) <= kind.capabilities)


def build(role: str, cfg: Any, **sizes: Any) -> nn.Module:
    """Build the ``role`` model described by the config dataclass ``cfg`` (which has a ``kind`` field)."""
    return get_kind(role, cfg.kind).cls.from_config(cfg, **sizes)


def describe(module: nn.Module) -> dict[str, Any]:
    """``{"kind": ..., "args": ...}``: what a checkpoint stores to rebuild ``module``."""
    return {"kind": module.kind, "args": module.config()}


def rebuild(role: str, spec: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """The module a checkpoint describes (see :func:`describe`); UserError for a missing or unknown kind.

    A description without ``kind`` (checkpoints of seqgan-kit 0.1) is the role's default kind.
    """
    if not isinstance(spec, dict):
        raise UserError(f"{source}: holds no {role} description")
    if "kind" not in spec:
        spec = {"kind": DEFAULT_KIND[role], "args": spec}
    try:
        return get_kind(role, spec["kind"]).cls(**spec["args"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{source}: cannot rebuild its {role} of kind {spec.get('kind')!r}: {exc}") from None
