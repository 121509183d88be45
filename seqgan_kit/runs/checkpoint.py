"""Checkpoints: one safetensors file holding tensors, with the JSON metadata in its header. No pickle.

Layout of the tensor names:

- ``model.<name>.<param>``: module weights (``generator``, ``discriminator``, ...)
- ``optim.<name>.<param index>.<key>``: optimizer state tensors (Adam's ``exp_avg``, ``step``, ...)
- ``rng.cpu`` / ``rng.cuda.<i>``: random-number-generator states

The header metadata holds ``{"format": FORMAT, "version": 1, "meta": <JSON>}``; ``meta`` has the config,
the training progress, module constructor arguments and the optimizers' ``param_groups``.
Files are written atomically (:func:`seqgan_kit.files.atomic_path`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError
from ..files import atomic_path

FORMAT = "seqgan-kit/checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and JSON-serialisable ``meta`` to ``path`` atomically."""
    header = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(meta)}
    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path, make_parents=True) as tmp:
        try:
            save_file(flat, str(tmp), metadata=header)
        except SafetensorError as exc:  # safetensors reports a failed write (full disk, ...) as its own error
            raise OSError(str(exc)) from None


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; corrupt or foreign files raise UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable checkpoint (corrupt or not safetensors: {exc})") from None
    if header.get("format") != FORMAT:
        raise UserError(f"{path} is a safetensors file but not a seqgan-kit checkpoint")
    if header.get("version") != str(VERSION):
        raise UserError(f"{path}: checkpoint version {header.get('version')} is not supported (expected {VERSION})")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError, RecursionError):
        raise UserError(f"{path}: checkpoint metadata is damaged") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: checkpoint metadata is damaged (not a JSON object)")
    for key, tensor in tensors.items():  # NaN is never a weight, a buffer or an optimizer state
        if tensor.is_floating_point() and bool(torch.isnan(tensor).any()):
            raise UserError(f"{path}: {key} holds NaN values (a diverged run or a damaged file); use an earlier "
                            f"checkpoint")
    return tensors, meta


# --------------------------------------------------------------------------- modules and optimizers
def module_tensors(name: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"model.{name}.{k}": v for k, v in module.state_dict().items()}


def load_module(name: str, module: nn.Module, tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``model.<name>.*`` into ``module``; a missing or mis-shaped tensor raises UserError."""
    prefix = f"model.{name}."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not state:
        raise UserError(f"{source}: checkpoint has no {name} weights")
    own = module.state_dict()
    for key, value in own.items():
        if key not in state:
            raise UserError(f"{source}: {name} weight {key} is missing")
        if state[key].shape != value.shape:
            raise UserError(
                f"{source}: {name} weight {key} has shape {tuple(state[key].shape)}, this model expects "
                f"{tuple(value.shape)} (a checkpoint of another vocabulary or size?)"
            )
    extra = sorted(set(state) - set(own))
    if extra:
        raise UserError(f"{source}: unexpected {name} weights {', '.join(extra[:3])}")
    parameters = {key for key, _ in module.named_parameters()}
    for key, value in state.items():
        # A parameter must be finite; a buffer may hold -inf (a log-probability of 0), never NaN or +inf.
        if value.is_floating_point() and not _finite_enough(value, key in parameters):
            raise UserError(f"{source}: {name} weight {key} holds non-finite values (a diverged run or a damaged "
                            f"file); use an earlier checkpoint")
    module.load_state_dict(state)


def _finite_enough(value: torch.Tensor, parameter: bool) -> bool:
    """Parameters: all finite. Buffers: no NaN and no +inf (``-inf`` is a legal log-probability)."""
    if parameter:
        return bool(torch.isfinite(value).all())
    return not bool((torch.isnan(value) | (value == float("inf"))).any())


def optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Optimizer state as tensors plus its JSON-serialisable ``param_groups``."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{name}.{idx}.{key}"] = t
    return tensors, sd["param_groups"]


def load_optimizer(
    name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    prefix = f"optim.{name}."
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[field] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


# --------------------------------------------------------------------------- random number generators
def rng_tensors() -> dict[str, torch.Tensor]:
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = s
    return out


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        states = [tensors[k] for k in cuda][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)


# --------------------------------------------------------------------------- models from checkpoints
def load_model(path: str | Path, role: str = "generator") -> tuple[nn.Module, dict[str, Any], Path]:
    """The ``role`` model of a checkpoint file, or of a run directory's latest checkpoint, rebuilt from the
    kind and arguments stored with it: ``(module in eval mode, meta, file)``."""
    from ..models.registry import rebuild
    from .rundir import CHECKPOINT

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    tensors, meta = load_checkpoint(path)
    spec = (meta.get("modules") or {}).get(role)
    if spec is None:
        raise UserError(f"{path}: checkpoint holds no {role}")
    module = rebuild(role, spec, str(path))
    load_module(role, module, tensors, path)
    module.eval()
    return module, meta, path
