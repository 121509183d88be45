"""Model registries: ``generator.kind`` and ``discriminator.kind`` name a registered model class.

A model class is registered with its config dataclass::

    @register("generator", "lstm", LSTMGeneratorConfig)
    class LSTMGenerator(SequenceGenerator): ...

and provides two methods:

- ``from_config(cfg, **sizes)`` (classmethod): build from the recipe table (``sizes`` are what the task
  decides: ``vocab_size``, ``seq_len`` and the special tokens for a generator; ``vocab_size``, ``seq_len`` and
  ``pad_token`` for a discriminator).
- ``config()``: the constructor arguments, stored in every checkpoint beside the kind
  (:func:`describe`), so :func:`rebuild` makes the same module from a checkpoint alone.

and ``activation_bytes(batch)``: the float32 bytes of the activations one training batch of ``batch`` rows
keeps for the backward pass (:func:`memory_estimate` adds the parameters, counted on PyTorch's meta device, so
nothing is allocated). It declares, as the class attribute ``capabilities``, what an algorithm may ask of it (see
:data:`CAPABILITIES`): an algorithm's trainer lists what it ``requires`` of each role, and a recipe pairing it
with a kind that lacks one is refused when the recipe is validated.

The built-in kinds are registered when their modules are first needed; a kind registered elsewhere (a test, a
plugin) works the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..device import check_fits
from ..errors import UserError

ROLES = ("generator", "discriminator", "infill_discriminator")
BUILTIN_MODULES = (
    "seqgan_kit.models.lstm_generator",
    "seqgan_kit.models.discriminator",
    "seqgan_kit.models.rmc_generator",
    "seqgan_kit.models.relgan_discriminator",
    "seqgan_kit.models.maskgan",
    "seqgan_kit.models.leakgan_generator",
    "seqgan_kit.models.textgan_discriminator",
    "seqgan_kit.models.ranker",
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
    "features": "the feature vector of a batch of token sequences before the output layer (``features``), which "
                "LeakGAN leaks to its generator",
    "leaked_features": "a generator steered by a discriminator's leaked features (LeakGAN's Manager and Worker: "
                       "``teacher_forced``, ``sync_features``, its parameter groups)",
    "soft_argmax": "TextGAN's rollout from a latent initial state: greedy tokens, the next input the "
                   "softmax-weighted mean of the embeddings (``soft_argmax_rollout``, ``embedding``)",
    "feature_matching": "CNN features, class scores and a latent reconstruction of embedded sequences [B, T, E] "
                        "read through the generator's embedding (TextGAN's MMD feature matching)",
    "rank_score": "cosine relevance of sentences to a reference set, ranked by a softmax within a comparison "
                  "set (RankGAN's ranker)",
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


SIZE_ARGS = ("vocab_size", "seq_len", "emb_dim", "hidden_dim", "dim", "mem_slots", "head_size",
             "num_heads", "mlp_layers", "num_rep", "fc_dim", "start_token", "eos_token", "pad_token")
"""Constructor arguments that are whole numbers wherever a kind has them (the special tokens may be None)."""
SIZE_LIST_ARGS = ("filter_sizes", "num_filters")
"""Constructor arguments that are lists of whole numbers."""
MAX_SIZE = 2**40
"""No size of a checkpoint's model is larger (a larger one is a damaged or hostile file)."""
FLOAT_BYTES = 4
TRAINING_STATE = 3
"""Besides its weights, training keeps a gradient and Adam's two moments of every parameter."""


def meta_build(build: Callable[[], nn.Module]) -> nn.Module | None:
    """What ``build()`` makes, on PyTorch's meta device: every shape, no memory, no draw from the random streams.

    None when the kind cannot be built there (an operation the meta device lacks); a ValueError or TypeError of
    its constructor (bad arguments) propagates."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        try:
            return build()
        except (RuntimeError, NotImplementedError):
            return None


def parameter_bytes(module: nn.Module) -> int:
    """float32 bytes of ``module``'s parameters (a meta module's too)."""
    return FLOAT_BYTES * sum(p.numel() for p in module.parameters())


def memory_estimate(module: nn.Module, batch: int) -> dict[str, int]:
    """Bytes training ``module`` needs: ``parameters``, ``training state`` (gradients and Adam's moments) and the
    ``activations`` of a batch of ``batch`` rows (the kind's ``activation_bytes``; 0 for a kind without one)."""
    params = parameter_bytes(module)
    activations = getattr(module, "activation_bytes", None)
    return {"parameters": params, "training state": TRAINING_STATE * params,
            "activations": int(activations(batch)) if activations is not None else 0}


def _check_args(role: str, args: dict[str, Any], source: str) -> None:
    """UserError for a size argument of the wrong type or of absurd size (before anything is built)."""
    for name in SIZE_ARGS:
        value = args.get(name)
        if value is None and name.endswith("_token"):
            continue
        if name in args and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SIZE):
            raise UserError(f"{source}: its {role}'s {name} must be a whole number from 0 to {MAX_SIZE:,}, got "
                            f"{value!r:.60}")
    for name in SIZE_LIST_ARGS:
        value = args.get(name)
        if name in args and (not isinstance(value, list) or len(value) > 1000 or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SIZE for v in value)):
            raise UserError(f"{source}: its {role}'s {name} must be a list of whole numbers, got {value!r:.60}")


def rebuild(role: str, spec: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """The module a checkpoint describes (see :func:`describe`); UserError for a missing or unknown kind, for
    declared sizes of the wrong type or absurd size, and for parameters that cannot fit in this machine's memory,
    all before anything is allocated.

    A description without ``kind`` (checkpoints of seqgan-kit 0.1) is the role's default kind.
    """
    if not isinstance(spec, dict):
        raise UserError(f"{source}: holds no {role} description")
    if "kind" not in spec:
        spec = {"kind": DEFAULT_KIND[role], "args": spec}
    try:
        cls = get_kind(role, spec["kind"]).cls
        args = _current_names(spec["args"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{source}: cannot rebuild its {role} of kind {spec.get('kind')!r}: {exc}") from None
    return checked_build(cls, args, role, source, f"of kind {spec.get('kind')!r}")


RENAMED_ARGS = {"max_len": "seq_len"}
"""Constructor arguments renamed since checkpoints were first written: old name -> new (seqgan-kit 0.1's
generators stored their length as ``max_len``)."""


def _current_names(args: Any) -> Any:
    """A checkpoint's constructor arguments under their current names (anything but a table is left as it is)."""
    if not isinstance(args, dict):
        return args
    return {RENAMED_ARGS.get(k, k) if RENAMED_ARGS.get(k, k) not in args else k: v for k, v in args.items()}


def checked_build(cls: Callable[..., nn.Module], args: Any, role: str, source: str, what: str = "") -> nn.Module:
    """``cls(**args)`` for the arguments a file declares, after checking them: UserError for arguments that are
    not a table, a size of the wrong type or absurd size, or parameters that cannot fit in this machine's memory
    (counted on the meta device), all before anything is allocated."""
    try:
        if not isinstance(args, dict):
            raise TypeError(f"its arguments are {type(args).__name__}, not a table")
        _check_args(role, args, source)
        meta = meta_build(lambda: cls(**args))
        if meta is not None:
            check_fits({f"{role} parameters": parameter_bytes(meta)}, f"{source}: its {role}",
                       f"the file declares sizes {_sizes(args)}; is it damaged?")
        return cls(**args)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{source}: cannot rebuild its {role}{' ' + what if what else ''}: {exc}") from None


def _sizes(args: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in args.items() if k in SIZE_ARGS and isinstance(v, int) and v > 1000) or "?"

