"""One training run: its config, task, models, optimizers, random streams, run directory and checkpoints.

A run is a list of *phases* (``pretrain_g``, then e.g. ``pretrain_d`` and ``adversarial``). Each phase counts
completed units (epochs or iterations). A checkpoint records ``(phase, units done)`` together with every
model, optimizer and random state, so :meth:`Experiment.run` can resume exactly where the last checkpoint was
written: on CPU with the same seed, a resumed run ends with the same metrics as an uninterrupted one.

Random streams, each derived from the run's seed so that one part never shifts another:

- each model's initialisation (:meth:`Experiment.build_model`, keyed by the module's name): building a
  discriminator does not change the generator's initial weights or anything after it;
- ``data`` (:meth:`Experiment.rng`): the order of training examples;
- evaluation (:meth:`Experiment.evaluate`): a fresh stream per evaluation point, keyed by phase and unit, so
  how often a run evaluates changes no training step;
- the global torch stream: everything else a phase draws (dropout, generated negatives, rollouts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..data.tokenization import BOS, EOS, PAD, SPECIALS
from ..device import check_fits, choose_precision
from ..distributed import Ranks, Wrapped
from ..errors import UserError
from ..models import registry as models
from ..models.lstm_generator import LSTMGenerator
from ..runs.checkpoint import (
    load_checkpoint,
    load_module,
    load_optimizer,
    module_tensors,
    optimizer_tensors,
    restore_rng,
    rng_tensors,
    save_checkpoint,
)
from ..runs.rundir import RunDir
from ..runs.tracking import Tracker, sample_lines, say
from ..tasks.synthetic import SyntheticTask
from .divergence import sampling_stops_divergence
from .recipe import ExperimentConfig
from .registry import PhaseFn
from .warm_start import reuse_vocabulary


def derived_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one ``purpose`` of a run, derived from the run's seed."""
    digest = hashlib.sha256(f"seqgan-kit:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def text_vocab_floor(cfg: ExperimentConfig) -> int:
    """The least vocabulary a text run's config allows, known before its corpus is read: the sentencepiece size,
    ``max_vocab`` plus the four special tokens, or the special tokens and one word."""
    data = cfg.data
    if data.tokenizer == "sentencepiece":
        return data.spm_vocab_size
    return len(SPECIALS) + (data.max_vocab or 1)


def global_batch_sizes(cfg: ExperimentConfig) -> dict[str, int]:
    """Every training batch size of the config (dotted key -> size): the ``*batch_size`` integers of every
    table but ``[eval]`` (evaluation batches only chunk rank 0's sampling)."""
    out = {}
    for table in dataclasses.fields(cfg):
        value = getattr(cfg, table.name)
        if table.name in ("eval", "_spec") or not dataclasses.is_dataclass(value):
            continue
        name = cfg.spec.table if table.name == "algo" else table.name
        for f in dataclasses.fields(value):
            size = getattr(value, f.name)
            if f.name.endswith("batch_size") and isinstance(size, int) and not isinstance(size, bool):
                out[f"{name}.{f.name}"] = size
    return out


def memory_needs(cfg: ExperimentConfig, batch: int, vocab: int | None = None) -> dict[str, int]:
    """Bytes the run's models need to train on batches of ``batch`` rows (name -> bytes), each estimated by its
    own kind (:func:`seqgan_kit.models.registry.memory_estimate`, on the meta device: nothing is allocated).

    Synthetic runs know their vocabulary (``oracle.vocab_size``); a text run's is known only once its corpus is
    read, so the estimate takes the least its config allows (:func:`text_vocab_floor`) unless ``vocab`` gives it.
    """
    synthetic = cfg.task == "synthetic"
    if vocab is None:
        vocab = cfg.oracle.vocab_size if synthetic else text_vocab_floor(cfg)
    tokens = {"start_token": cfg.oracle.start_token} if synthetic else {"start_token": BOS, "eos_token": EOS,
                                                                        "pad_token": PAD}
    parts: dict[str, int] = {}
    builds = {}
    if "generator" in cfg.spec.requires:
        builds["generator"] = lambda: models.build("generator", cfg.generator, vocab_size=vocab,
                                                   seq_len=cfg.seq_len, **tokens)
    if "discriminator" in cfg.spec.requires:
        builds["discriminator"] = lambda: models.build("discriminator", cfg.discriminator, vocab_size=vocab,
                                                       seq_len=cfg.seq_len, pad_token=None if synthetic else PAD)
    for name, build in builds.items():
        try:
            module = models.meta_build(build)
        except (TypeError, ValueError):
            continue  # the real build reports it
        if module is not None:
            parts.update({f"{name} {part}": size for part, size in models.memory_estimate(module, batch).items()})
    if synthetic:
        oracle = models.meta_build(lambda: LSTMGenerator(cfg.oracle.vocab_size, cfg.oracle.emb_dim,
                                                         cfg.oracle.hidden_dim, cfg.oracle.seq_len))
        if oracle is not None:
            parts["oracle parameters"] = models.parameter_bytes(oracle)
    return parts


def check_memory(cfg: ExperimentConfig, vocab: int | None = None) -> None:
    """Refuse a run whose models cannot train in this machine's memory on its largest training batch (see
    :func:`memory_needs`): before any data is read (a text run's least vocabulary), and again once a text run's
    vocabulary is known (``vocab``), before any model is built."""
    batch = max(global_batch_sizes(cfg).values(), default=1)
    vocab_key = ("oracle.vocab_size" if cfg.task == "synthetic" else
                 "data.spm_vocab_size" if cfg.data.tokenizer == "sentencepiece" else "data.max_vocab")
    check_fits(memory_needs(cfg, batch, vocab), "the run",
               f"lower the model sizes, the vocabulary ({vocab_key}), the sequence length ({cfg.seq_len_source}) "
               f"or the batch sizes")


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """The toolkit's Adam: PyTorch's fused kernel, which updates every parameter in one pass. The same update as
    the default per-tensor loop up to rounding, and a step several times faster on CPU
    (``eval/results/mle_speed.md``). Where the fused kernel is missing (torch < 2.4 on CPU, another device) it is
    the default Adam."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr, betas=betas)


def _build_task(cfg: ExperimentConfig, run: RunDir, device: torch.device):
    if cfg.task == "text":
        from ..tasks.text import TOKENIZER_DIR, TextTask

        workdir = run.path / TOKENIZER_DIR
        reuse_vocabulary(cfg.init, workdir)
        return TextTask(cfg.data, cfg.eval, workdir, device, seed=cfg.seed)
    return SyntheticTask(cfg.oracle, cfg.eval, data_seed=cfg.seed, device=device)


class Experiment:
    """Holds everything a phase needs and writes what it produces."""

    def __init__(self, cfg: ExperimentConfig, run: RunDir, device: torch.device, build_generator: bool = True,
                 ranks: Ranks | None = None) -> None:
        self.cfg = cfg
        self.run_dir = run
        self.device = device
        self.ranks = ranks or Ranks(device=device)
        """This process's rank among the run's processes (one rank: no process group)."""
        self.precision, self.precision_reason = choose_precision(cfg.runtime.precision, device)
        """``fp32`` or ``bf16``: what ``runtime.precision`` (``auto`` by default) resolved to here, and why."""
        self.ranks.precision = self.precision
        self.ranks.seed_local(derived_seed(cfg.seed, f"rank:{self.ranks.rank}"))
        torch.manual_seed(cfg.seed)
        with self.ranks.main_first():  # rank 0 writes a text run's tokenizer, the others read it
            self.task = _build_task(cfg, run, device)
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.rngs: dict[str, torch.Generator] = {}
        self.state: dict[str, Any] = {}
        """Small JSON-serialisable values a phase carries between units (checkpointed)."""
        self._clock = time.perf_counter()
        self.tracker = Tracker(run.path, cfg.runtime.report_to if self.ranks.is_main else ())
        """``runtime.report_to`` (TensorBoard): fed by :meth:`log`, closed by the runner."""
        if cfg.task == "text" and build_generator:
            check_memory(cfg, vocab=self.task.vocab_size)
        if build_generator:
            self.generator = self.build_model("generator", "generator", cfg.generator,
                                              vocab_size=self.task.vocab_size, seq_len=self.task.seq_len,
                                              **self.task.special_tokens())

    # ------------------------------------------------------------------ models and random streams
    def build_model(self, name: str, role: str, model_cfg: Any, **sizes: Any) -> nn.Module:
        """Build a registered model from its config with its own initialisation stream; register it as ``name``.

        Initialisation draws come from a seed derived from the run's seed and ``name`` (on the CPU, then the
        module moves to the run's device), so adding a model never changes another's initial weights.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(self.cfg.seed, f"init:{name}"))
            module = models.build(role, model_cfg, **sizes)
        module = module.to(self.device)
        if self.cfg.runtime.compile:
            module.forward = torch.compile(module.forward, dynamic=True)  # the state dict keeps its names
        self.modules[name] = module
        return module

    def wrap(self, module: nn.Module, unused_parameters: bool | None = None) -> Wrapped:
        """``module`` for training: behind DDP when the run has several ranks, under the run's autocast.

        Call it as ``wrapped(lambda m: loss_of(m))``; gradients of whatever ``m`` computes are averaged over
        the ranks in ``backward``. A module whose class sets ``unused_parameters = True`` (some parameters sit
        out a stage, e.g. the language model inside MaskGAN's in-filler) gets DDP's unused-parameter search;
        ``unused_parameters`` says it for this one wrapping.
        """
        if unused_parameters is None:
            unused_parameters = getattr(module, "unused_parameters", False)
        return self.ranks.wrap(module, find_unused_parameters=unused_parameters)

    def adam(self, name: str, params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
        """:func:`adam` over ``params``, registered (and so checkpointed) as ``name``."""
        optimizer = adam(params, lr, betas)
        self.optimizers[name] = optimizer
        return optimizer

    def build_discriminator(self) -> nn.Module:
        """The ``[discriminator]`` model for this run's vocabulary and length (PAD masked for variable-length
        text), registered as ``discriminator``."""
        gen = self.generator
        return self.build_model("discriminator", "discriminator", self.cfg.discriminator,
                                vocab_size=self.task.vocab_size, seq_len=self.task.seq_len,
                                pad_token=gen.pad_token if gen.variable_length else None)

    def rng(self, name: str) -> torch.Generator:
        """The run's CPU random stream ``name`` (created on first use; checkpointed)."""
        if name not in self.rngs:
            self.rngs[name] = torch.Generator().manual_seed(derived_seed(self.cfg.seed, f"rng:{name}"))
        return self.rngs[name]

    def eval_rng(self, phase: str, unit: int) -> torch.Generator:
        """A fresh stream on the run's device for the evaluation at ``(phase, unit)`` (one per rank)."""
        rank = f":rank{self.ranks.rank}" if self.ranks.world > 1 else ""
        return torch.Generator(device=self.device).manual_seed(
            derived_seed(self.cfg.seed, f"eval:{phase}:{unit}{rank}"))

    # ------------------------------------------------------------------ logging
    def evaluate(self, phase: str, unit: int) -> dict[str, float]:
        """The task's metrics of the generator, sampled from the evaluation stream of ``(phase, unit)``.

        With several ranks the samples and the test set are split between them (each rank its own stream) and
        every rank receives rank 0's result: metrics equal the one-process ones in distribution. A generator
        whose weights went non-finite cannot be sampled: that is reported as a diverged run (on every rank,
        since every rank holds the same weights).
        """
        with sampling_stops_divergence(f"{phase} step {unit}"):
            result = self.task.evaluate(self.generator, self.eval_rng(phase, unit), self.ranks)
        return self.ranks.broadcast(result)

    def log(self, phase: str, unit: str, value: int, total: int, metrics: dict[str, Any]) -> None:
        """Write one metrics record, print a one-line summary, redraw the curves (rank 0 only)."""
        if not self.ranks.is_main:
            return
        record = {"phase": phase, unit: value, **metrics, "elapsed_s": round(time.perf_counter() - self._clock, 3)}
        self.run_dir.log(record)
        shown = "  ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
        )
        say(f"[{phase}] {unit} {value}/{total}  {shown}  ({record['elapsed_s']:.0f} s)")
        self.run_dir.plot()
        if self.tracker.active:
            gen = getattr(self, "generator", None)
            self.tracker.log(record, None if gen is None else lambda: sample_lines(
                gen, self.task, derived_seed(self.cfg.seed, f"tracked:{phase}:{value}")))

    # ------------------------------------------------------------------ checkpoints
    def _meta(self, names: list[str]) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "modules": {n: models.describe(self.modules[n]) for n in names if hasattr(self.modules[n], "kind")},
            "task": self.task.fingerprint(),
            **self.vocab_meta(),
        }

    def save(self, phase: str, units_done: int) -> None:
        """Write the full training state to the run directory's checkpoint (atomically, rank 0 only).

        Models and optimizers are the same on every rank (DDP); the per-rank random streams are gathered so
        that the checkpoint holds every rank's.
        """
        local = self.ranks.gather(self.ranks.local_states())
        if not self.ranks.is_main:
            return
        tensors: dict[str, torch.Tensor] = {}
        groups: dict[str, list[dict]] = {}
        for name, module in self.modules.items():
            tensors.update(module_tensors(name, module))
        for name, opt in self.optimizers.items():
            t, groups[name] = optimizer_tensors(name, opt)
            tensors.update(t)
        tensors.update(rng_tensors())
        tensors.update({f"rng.named.{name}": g.get_state() for name, g in self.rngs.items()})
        if self.ranks.world > 1:
            tensors.update({f"rng.rank.{r}.{kind}": state for r, states in enumerate(local)
                            for kind, state in states.items()})
        meta = {
            **self._meta(list(self.modules)),
            "phase": phase,
            "units_done": units_done,
            "metrics_records": len(self.run_dir.read_metrics()),
            "elapsed_s": time.perf_counter() - self._clock,
            "optimizer_groups": groups,
            "state": self.state,
            "world_size": self.ranks.world,
        }
        save_checkpoint(self.run_dir.checkpoint, tensors, meta)

    def save_weights(self, filename: str, names: list[str]) -> None:
        """A weights-only checkpoint (e.g. ``generator_mle.safetensors``) for sampling or a later run, written by
        rank 0; every rank returns once it is on disk."""
        if self.ranks.is_main:
            tensors: dict[str, torch.Tensor] = {}
            for name in names:
                tensors.update(module_tensors(name, self.modules[name]))
            save_checkpoint(self.run_dir.path / filename, tensors, self._meta(names))
        self.ranks.barrier()

    def load_weights(self, filename: str, names: list[str]) -> None:
        """Load the named modules from a weights-only checkpoint of this run (see :meth:`save_weights`), e.g. the
        best MLE generator a later phase continues from; every rank reads the file."""
        path = self.run_dir.path / filename
        tensors, _ = load_checkpoint(path)
        for name in names:
            load_module(name, self.modules[name], tensors, path)

    def vocab_meta(self) -> dict[str, Any]:
        """``{"vocab": {...}}`` for text runs: which corpus and vocabulary the weights belong to."""
        vocab = getattr(self.task, "vocab", None)
        if vocab is None:
            return {}
        return {"vocab": {"corpus": self.cfg.data.name, "fingerprint": vocab.fingerprint, "size": len(vocab)}}

    def restore(self, phase_names: list[str] | None = None) -> tuple[str, int]:
        """Load the run directory's checkpoint; return ``(phase, units_done)``.

        Everything is checked (data, shapes, the phase among ``phase_names``) before the one write, the metrics
        log cut back to what the checkpoint had seen.
        """
        path = self.run_dir.checkpoint
        tensors, meta = load_checkpoint(path)
        saved_task = meta.get("task")
        if saved_task is not None and saved_task != self.task.fingerprint():
            raise UserError(f"{path} was written for other training data ({saved_task}) than this configuration "
                            f"gives ({self.task.fingerprint()}): was config.toml edited? Use a new run directory")
        if phase_names is not None and meta.get("phase") not in phase_names:
            raise UserError(f"{path}: checkpoint phase {meta.get('phase')!r} is not part of this run (algorithm "
                            f"{self.cfg.algorithm!r}: {', '.join(phase_names)})")
        for name, module in self.modules.items():
            load_module(name, module, tensors, path)
        for name, opt in self.optimizers.items():
            if name in meta["optimizer_groups"]:
                # The checkpoint brings the optimizer's state; the configuration (which a resume may override,
                # e.g. --set mle.lr=...) sets its hyperparameters.
                fresh = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
                saved = meta["optimizer_groups"][name]
                groups = [{**s, **f} for s, f in zip(saved, fresh, strict=True)] if len(saved) == len(fresh) else saved
                load_optimizer(name, opt, tensors, groups)
        restore_rng(tensors)
        for key, value in tensors.items():
            if key.startswith("rng.named."):
                self.rng(key[len("rng.named."):]).set_state(value)
        self._restore_local_rng(tensors, int(meta.get("world_size", 1)), meta["phase"], int(meta["units_done"]))
        self.state = dict(meta.get("state", {}))
        if self.ranks.is_main:
            self.run_dir.truncate_metrics(meta["metrics_records"])
        self._clock = time.perf_counter() - float(meta.get("elapsed_s", 0.0))
        return meta["phase"], int(meta["units_done"])

    def _restore_local_rng(self, tensors: dict[str, torch.Tensor], saved_world: int, phase: str, units: int) -> None:
        """This rank's own stream from the checkpoint; a rank the checkpoint has none for starts a fresh one."""
        ranks = self.ranks
        prefix = f"rng.rank.{ranks.rank}."
        states = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if states:
            ranks.set_local_states(states)
        elif ranks.world > 1:
            ranks.seed_local(derived_seed(self.cfg.seed, f"rank:{ranks.rank}:resumed:{phase}:{units}"))
        if saved_world != ranks.world and ranks.is_main:
            print(f"resuming a checkpoint of {saved_world} rank(s) with {ranks.world}: models, optimizers and the "
                  f"shared streams continue exactly; each rank's own draws (rollouts, dropout, relaxed samples) "
                  f"do not repeat those of an uninterrupted run", flush=True)

    # ------------------------------------------------------------------ driver
    def run(self, phases: list[tuple[str, PhaseFn]], resume: bool = False,
            before_start: Callable[[], None] | None = None) -> None:
        """Run the phases in order; with ``resume``, skip what the checkpoint says is done.

        ``before_start`` is called once the checkpoint is restored (every check passed), before the first phase.
        """
        start_index, start_units = 0, 0
        if resume:
            names = [n for n, _ in phases]
            phase, units = self.restore(names)
            start_index, start_units = names.index(phase), units
        if before_start is not None:
            before_start()
        if resume and self.ranks.is_main:
            print(f"resuming {self.run_dir.path} at {phase}, {units} done", flush=True)
        for i, (_, phase_fn) in enumerate(phases):
            if i < start_index:
                continue
            phase_fn(start_units if i == start_index else 0)
