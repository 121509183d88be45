"""One training run: its config, task, models, optimizers, run directory and checkpoints.

A run is a list of *phases* (``pretrain_g``, then e.g. ``pretrain_d`` and ``adversarial``). Each phase counts
completed units (epochs or iterations). A checkpoint records ``(phase, units done)`` together with every
model, optimizer and RNG state, so :meth:`Experiment.run` can resume exactly where the last checkpoint was
written: on CPU with the same seed, a resumed run ends with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import (
    load_checkpoint,
    load_module,
    load_optimizer,
    module_tensors,
    optimizer_tensors,
    restore_rng,
    rng_tensors,
    save_checkpoint,
)
from ..config import ExperimentConfig, config_to_dict
from ..errors import UserError
from ..generator import Generator
from ..rundir import RunDir
from ..synthetic import SyntheticTask

Phase = Callable[["Experiment", int], None]


def _reuse_tokenizer(init: str, workdir: Path) -> None:
    """A run that starts from another run's generator uses that run's vocabulary (copied once)."""
    from ..text_task import TOKENIZER_DIR

    source = Path(init)
    source = (source if source.is_dir() else source.parent) / TOKENIZER_DIR
    if workdir.exists() or not source.is_dir():
        return  # resumed (already copied), or the init checkpoint has no run dir: the vocab check decides
    try:
        shutil.copytree(source, workdir)
    except OSError as exc:
        raise UserError(f"cannot copy the vocabulary of {source} into {workdir}: {exc}") from None


class Experiment:
    """Holds everything a phase needs and writes what it produces."""

    def __init__(self, cfg: ExperimentConfig, run: RunDir, device: torch.device) -> None:
        self.cfg = cfg
        self.run_dir = run
        self.device = device
        torch.manual_seed(cfg.seed)
        g = cfg.generator
        if cfg.task == "text":
            from ..text_task import TOKENIZER_DIR, TextTask

            workdir = run.path / TOKENIZER_DIR
            if cfg.algorithm != "mle" and cfg.seqgan.generator_init:
                _reuse_tokenizer(cfg.seqgan.generator_init, workdir)
            self.task = TextTask(cfg, workdir, device)
            specials = {"start_token": self.task.start_token, "eos_token": self.task.eos_token,
                        "pad_token": self.task.pad_token}
        else:
            self.task = SyntheticTask(cfg.oracle, cfg.eval, data_seed=cfg.seed, device=device)
            specials = {"start_token": cfg.oracle.start_token}
        self.generator = Generator(
            self.task.vocab_size, g.emb_dim, g.hidden_dim, self.task.seq_len, init_std=g.init_std, **specials
        ).to(device)
        self.modules: dict[str, nn.Module] = {"generator": self.generator}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.state: dict[str, Any] = {}
        """Small JSON-serialisable values a phase carries between units (checkpointed)."""
        self._clock = time.perf_counter()

    # ------------------------------------------------------------------ logging
    def evaluate(self) -> dict[str, float]:
        return self.task.evaluate(self.generator)

    def log(self, phase: str, unit: str, value: int, total: int, metrics: dict[str, Any]) -> None:
        """Write one metrics record, print a one-line summary, redraw the curves."""
        record = {"phase": phase, unit: value, **metrics, "elapsed_s": round(time.perf_counter() - self._clock, 3)}
        self.run_dir.log(record)
        shown = "  ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
        )
        print(f"[{phase}] {unit} {value}/{total}  {shown}  ({record['elapsed_s']:.0f} s)", flush=True)
        self.run_dir.plot()

    # ------------------------------------------------------------------ checkpoints
    def save(self, phase: str, units_done: int) -> None:
        tensors: dict[str, torch.Tensor] = {}
        groups: dict[str, list[dict]] = {}
        for name, module in self.modules.items():
            tensors.update(module_tensors(name, module))
        for name, opt in self.optimizers.items():
            t, groups[name] = optimizer_tensors(name, opt)
            tensors.update(t)
        tensors.update(rng_tensors())
        meta = {
            "config": config_to_dict(self.cfg),
            "phase": phase,
            "units_done": units_done,
            "metrics_records": len(self.run_dir.read_metrics()),
            "elapsed_s": time.perf_counter() - self._clock,
            "modules": {n: m.config() for n, m in self.modules.items() if hasattr(m, "config")},
            **self.vocab_meta(),
            "optimizer_groups": groups,
            "state": self.state,
        }
        save_checkpoint(self.run_dir.checkpoint, tensors, meta)

    def save_weights(self, filename: str, names: list[str]) -> None:
        """A weights-only checkpoint (e.g. ``generator_mle.safetensors``) for sampling or a later run."""
        tensors: dict[str, torch.Tensor] = {}
        for name in names:
            tensors.update(module_tensors(name, self.modules[name]))
        meta = {
            "config": config_to_dict(self.cfg),
            "modules": {n: self.modules[n].config() for n in names if hasattr(self.modules[n], "config")},
            **self.vocab_meta(),
        }
        save_checkpoint(self.run_dir.path / filename, tensors, meta)

    def vocab_meta(self) -> dict[str, Any]:
        """``{"vocab": {...}}`` for text runs: which corpus and vocabulary the weights belong to."""
        vocab = getattr(self.task, "vocab", None)
        if vocab is None:
            return {}
        return {"vocab": {"corpus": self.cfg.data.name, "fingerprint": vocab.fingerprint, "size": len(vocab)}}

    def restore(self) -> tuple[str, int]:
        """Load the run directory's checkpoint; return ``(phase, units_done)``."""
        path = self.run_dir.checkpoint
        tensors, meta = load_checkpoint(path)
        for name, module in self.modules.items():
            load_module(name, module, tensors, path)
        for name, opt in self.optimizers.items():
            if name in meta["optimizer_groups"]:
                load_optimizer(name, opt, tensors, meta["optimizer_groups"][name])
        restore_rng(tensors)
        self.state = dict(meta.get("state", {}))
        self.run_dir.truncate_metrics(meta["metrics_records"])
        self._clock = time.perf_counter() - float(meta.get("elapsed_s", 0.0))
        return meta["phase"], int(meta["units_done"])

    # ------------------------------------------------------------------ driver
    def run(self, phases: list[tuple[str, Phase]], resume: bool = False) -> None:
        """Run the phases in order; with ``resume``, skip what the checkpoint says is done."""
        start_index, start_units = 0, 0
        if resume:
            phase, units = self.restore()
            names = [n for n, _ in phases]
            if phase not in names:
                raise UserError(f"{self.run_dir.checkpoint}: checkpoint phase {phase!r} is not part of this run")
            start_index, start_units = names.index(phase), units
            print(f"resuming {self.run_dir.path} at {phase}, {units} done", flush=True)
        for i, (_, phase_fn) in enumerate(phases):
            if i < start_index:
                continue
            phase_fn(self, start_units if i == start_index else 0)
