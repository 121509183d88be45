"""Maximum-likelihood pretraining of the generator: the stage every adversarial variant starts from.

Paper settings: Adam lr 0.01, global gradient-norm clip 5, batch 64, 120 epochs over 9,984 oracle samples,
NLL_oracle every 5 epochs.

Besides the last epoch's generator (``generator_mle.safetensors``) the phase keeps the generator of the lowest
NLL_test seen at an evaluation (``generator_mle_best.safetensors``): MLE overfits small corpora within a few
epochs. ``mle.start_from = "best"`` makes the phases after MLE start from that one.

``algorithm = "mle"`` is this stage alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..config import non_negative, one_of, positive
from ..distributed import Ranks, Wrapped
from ..models.generator import SequenceGenerator
from .divergence import backward_step, finite_loss
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment

PHASE = "pretrain_g"
LAST_FILE = "generator_mle.safetensors"
BEST_FILE = "generator_mle_best.safetensors"


@dataclass
class MLEConfig:
    """The ``[mle]`` table: maximum-likelihood pretraining of the generator."""

    epochs: int = 120
    batch_size: int = 64
    lr: float = 0.01
    grad_clip: float = 5.0
    """Global gradient-norm clip (0: none)."""
    eval_every: int = 5
    """Evaluate (NLL_oracle, NLL_test) every this many epochs, plus before training and after the last."""
    checkpoint_every: int = 5
    """Write a checkpoint every this many epochs (and after the last)."""
    start_from: str = "last"
    """Which MLE generator the later phases start from: ``last`` (the final epoch) or ``best`` (lowest
    NLL_test among the evaluations)."""

    def validate(self) -> None:
        positive(self, "batch_size", "lr", "eval_every", "checkpoint_every")
        non_negative(self, "epochs", "grad_clip")
        one_of(self, "start_from", ("last", "best"))


def mle_loss(generator: SequenceGenerator, batch: torch.Tensor, tokens: float | None = None) -> torch.Tensor:
    """Mean per-token cross-entropy of teacher-forced ``batch [B, T]`` (padding after EOS left out).

    ``tokens``: divide the summed cross-entropy by this count instead (a rank's share of a global batch).
    """
    logits = generator(batch)  # [B, T, V]
    ignore = generator.pad_token if generator.variable_length else -100
    # [B, T, V] -> [B*T, V] against [B*T]
    flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), batch.reshape(-1)
    if tokens is None:
        return F.cross_entropy(flat_logits, flat_targets, ignore_index=ignore)
    return F.cross_entropy(flat_logits, flat_targets, ignore_index=ignore, reduction="sum") / tokens


def token_count(generator: SequenceGenerator, batch: torch.Tensor) -> int:
    """Tokens of ``batch [B, T]`` that count in :func:`mle_loss` (all, or those before padding)."""
    return int((batch != generator.pad_token).sum()) if generator.variable_length else batch.numel()


def train_epoch(
    generator: SequenceGenerator,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    batch_size: int,
    grad_clip: float,
    rng: torch.Generator | None = None,
    desc: str = "mle",
    epoch: int | None = None,
    ranks: Ranks | None = None,
    model: Wrapped | None = None,
) -> float:
    """One pass over ``data [N, T]`` in a fresh random order drawn from ``rng``; returns the mean batch loss.

    With several ``ranks`` each global batch of ``batch_size`` rows is split between them (``model``: the
    generator behind DDP, from ``Experiment.wrap``); the update equals the one-process one up to reduction
    order. A last batch with fewer rows than ranks is left out of that epoch.
    A non-finite batch loss stops training (UserError naming ``epoch``) before it can reach the weights.
    """
    generator.train()
    ranks = ranks or Ranks()
    world = ranks.world
    order = torch.randperm(data.shape[0], generator=rng).to(data.device)
    total, batches = 0.0, 0
    bar = tqdm(range(0, data.shape[0], batch_size), desc=desc, leave=False, unit="batch", disable=None)
    for lo in bar:
        batch = data[order[lo : lo + batch_size]]
        if world == 1:
            loss = mle_loss(generator, batch) if model is None else model(lambda g, rows=batch: mle_loss(g, rows))
        elif len(batch) < world:
            continue
        else:  # this rank's rows; the loss is its share of the global per-token mean
            local = ranks.shard(batch)
            share = token_count(generator, batch) / world
            loss = model(lambda g, rows=local, n=share: mle_loss(g, rows, tokens=n))
        where = f"epoch {epoch}" if epoch is not None else desc
        value = finite_loss(ranks.mean(loss), where)
        backward_step(optimizer, loss, where, grad_clip, generator.parameters())
        total += value
        batches += 1
    return total / max(batches, 1)


class MLEPretraining:
    """The shared stage: registers the MLE optimizer on ``exp`` and runs the ``pretrain_g`` phase."""

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp
        self.cfg: MLEConfig = exp.cfg.mle
        self.optimizer = exp.adam("generator_mle", exp.generator.parameters(), self.cfg.lr)
        self._model: Wrapped | None = None

    def phase(self) -> tuple[str, PhaseFn]:
        return PHASE, self.run

    def _report(self, epoch: int, extra: dict[str, float]) -> None:
        """The record of an evaluation epoch; keeps the generator of the lowest NLL_test so far."""
        exp = self.exp
        metrics = exp.evaluate(PHASE, epoch)
        exp.log(PHASE, "epoch", epoch, self.cfg.epochs, {**extra, **metrics})
        best = exp.state.get("mle_best_nll_test")
        if "nll_test" in metrics and (best is None or metrics["nll_test"] < best):
            exp.state.update(mle_best_nll_test=metrics["nll_test"], mle_best_epoch=epoch)
            exp.save_weights(BEST_FILE, ["generator"])

    def epoch(self, epoch: int) -> dict[str, float]:
        """One MLE epoch over the training data; its mean batch loss."""
        exp, cfg = self.exp, self.cfg
        loss = train_epoch(exp.generator, self.optimizer, exp.task.train, cfg.batch_size, cfg.grad_clip,
                           rng=exp.rng("data"), desc=f"mle epoch {epoch}", epoch=epoch, ranks=exp.ranks,
                           model=self._model)
        return {"train_loss": loss}

    def run(self, start_epoch: int) -> None:
        """Run MLE epochs ``start_epoch + 1 .. mle.epochs``, evaluating and checkpointing on schedule."""
        exp, cfg = self.exp, self.cfg
        if exp.cfg.init.generator:
            print(f"[{PHASE}] skipped: the generator comes from init.generator = {exp.cfg.init.generator}", flush=True)
            return
        if self._model is None or self._model.module is not exp.generator:
            self._model = exp.wrap(exp.generator)
        run_units(exp, PHASE, start_epoch, cfg.epochs, self.epoch, eval_every=cfg.eval_every,
                  checkpoint_every=cfg.checkpoint_every, unit="epoch", first={}, report=self._report)
        exp.save_weights(LAST_FILE, ["generator"])
        if cfg.start_from == "best" and cfg.epochs > 0 and "mle_best_epoch" in exp.state:  # 0 epochs: nothing to load
            exp.load_weights(BEST_FILE, ["generator"])
            print(f"[{PHASE}] continuing from the best MLE generator (epoch {exp.state['mle_best_epoch']}, "
                  f"nll_test {exp.state['mle_best_nll_test']:.4f})", flush=True)


@register_algorithm("mle")
class MLETrainer(Trainer):
    """``algorithm = "mle"``: the shared pretraining stage alone."""

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return []
