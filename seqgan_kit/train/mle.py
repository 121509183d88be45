"""Maximum-likelihood pretraining of the generator: the stage every adversarial variant starts from.

Paper settings: Adam lr 0.01, global gradient-norm clip 5, batch 64, 120 epochs over 9,984 oracle samples,
NLL_oracle every 5 epochs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..generator import Generator
from .experiment import Experiment

PHASE = "pretrain_g"


def mle_loss(generator: Generator, batch: torch.Tensor) -> torch.Tensor:
    """Mean per-token cross-entropy of teacher-forced ``batch [B, T]`` (padding after EOS left out)."""
    logits = generator(batch)  # [B, T, V]
    ignore = generator.pad_token if generator.variable_length else -100
    # [B, T, V] -> [B*T, V] against [B*T]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1), ignore_index=ignore)


def train_epoch(
    generator: Generator,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    batch_size: int,
    grad_clip: float,
    desc: str = "mle",
) -> float:
    """One pass over ``data [N, T]`` in a fresh random order; returns the mean batch loss."""
    generator.train()
    order = torch.randperm(data.shape[0]).to(data.device)
    total, batches = 0.0, 0
    bar = tqdm(range(0, data.shape[0], batch_size), desc=desc, leave=False, unit="batch", disable=None)
    for lo in bar:
        batch = data[order[lo : lo + batch_size]]
        loss = mle_loss(generator, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(generator.parameters(), grad_clip)
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / max(batches, 1)


def make_optimizer(exp: Experiment) -> None:
    """Register the MLE optimizer (must exist before a checkpoint is restored)."""
    exp.optimizers["generator_mle"] = torch.optim.Adam(exp.generator.parameters(), lr=exp.cfg.mle.lr)


def pretrain_generator(exp: Experiment, start_epoch: int) -> None:
    """Run MLE epochs ``start_epoch + 1 .. cfg.mle.epochs``, evaluating and checkpointing on schedule."""
    cfg = exp.cfg.mle
    optimizer = exp.optimizers["generator_mle"]
    if exp.cfg.algorithm != "mle" and exp.cfg.seqgan.generator_init:
        return  # the generator was loaded from an MLE checkpoint (seqgan.generator_init)
    if start_epoch == 0:
        exp.log(PHASE, "epoch", 0, cfg.epochs, exp.evaluate())
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        loss = train_epoch(exp.generator, optimizer, exp.task.train, cfg.batch_size, cfg.grad_clip,
                           desc=f"mle epoch {epoch}")
        last = epoch == cfg.epochs
        if epoch % cfg.eval_every == 0 or last:
            exp.log(PHASE, "epoch", epoch, cfg.epochs, {"train_loss": loss, **exp.evaluate()})
        if epoch % cfg.checkpoint_every == 0 or last:
            exp.save(PHASE, epoch)
    exp.save_weights("generator_mle.safetensors", ["generator"])
