"""SeqGAN (Yu et al., 2017): policy-gradient training of the generator against a CNN discriminator.

Phases after the shared MLE pretraining (``pretrain_g``):

- ``pretrain_d``: ``d_pretrain_rounds`` rounds; each samples ``n_negative`` fresh negatives from the generator
  and trains the discriminator ``d_pretrain_epochs`` epochs on them plus the real data (paper: 50 x 3).
- ``adversarial``: ``iterations`` iterations (paper: 200); each makes ``g_steps`` generator updates with the
  policy gradient ``-sum_{b,t} log G(y_t | y_<t) Q_t`` (Q from batched Monte Carlo rollouts scored by D),
  then ``d_steps`` rounds of ``d_epochs`` discriminator epochs on fresh negatives (paper: 1, 5, 3).

Metrics logged: ``nll_oracle``, ``nll_test``, ``d_loss``, ``d_accuracy``, ``mean_reward``, ``g_loss``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import load_checkpoint, load_module
from ..discriminator import Discriminator
from ..errors import UserError
from ..policy_gradient import policy_gradient_loss
from ..rollout import RolloutPolicy, rollout_rewards
from ..rundir import CHECKPOINT
from .experiment import Experiment, Phase

PRETRAIN_D = "pretrain_d"
ADVERSARIAL = "adversarial"


def _load_weights(exp: Experiment, spec: str, name: str, module: torch.nn.Module) -> None:
    path = Path(spec)
    if path.is_dir():
        path = path / CHECKPOINT
    tensors, meta = load_checkpoint(path)
    ours = exp.vocab_meta().get("vocab")
    theirs = meta.get("vocab")
    if ours and not theirs:
        raise UserError(f"{path}: its {name} was not trained on text (no vocabulary recorded); this run needs "
                        f"weights trained on {ours['corpus']!r}")
    if ours and theirs["fingerprint"] != ours["fingerprint"]:
        raise UserError(f"{path}: its {name} was trained with another vocabulary (corpus "
                        f"{theirs.get('corpus')!r}, {theirs.get('size')} tokens) than this run's "
                        f"({ours['corpus']!r}, {ours['size']} tokens)")
    load_module(name, module, tensors, path)


def setup(exp: Experiment) -> list[tuple[str, Phase]]:
    """Add the discriminator, its optimizer and the adversarial generator optimizer; return the phases."""
    cfg = exp.cfg
    pad = exp.generator.pad_token if exp.generator.variable_length else None
    disc = Discriminator.from_config(cfg.discriminator, exp.task.vocab_size, exp.task.seq_len, pad).to(exp.device)
    exp.modules["discriminator"] = disc
    exp.optimizers["discriminator"] = torch.optim.Adam(disc.parameters(), lr=cfg.discriminator.lr)
    exp.optimizers["generator_adv"] = torch.optim.Adam(exp.generator.parameters(), lr=cfg.seqgan.g_lr)
    exp.rollout_policy = RolloutPolicy(exp.generator, cfg.seqgan.rollout_ema)
    if exp.rollout_policy.ema is not None:
        exp.modules["rollout_policy"] = exp.rollout_policy.ema  # checkpointed with the other modules
    if cfg.seqgan.generator_init:
        _load_weights(exp, cfg.seqgan.generator_init, "generator", exp.generator)
    if cfg.seqgan.discriminator_init:
        _load_weights(exp, cfg.seqgan.discriminator_init, "discriminator", disc)
    return [(PRETRAIN_D, pretrain_discriminator), (ADVERSARIAL, adversarial)]


def train_discriminator(
    disc: Discriminator,
    optimizer: torch.optim.Optimizer,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    epochs: int,
    batch_size: int,
) -> tuple[float, float]:
    """``epochs`` passes over real ``[P, T]`` (label 1) and generated ``[Q, T]`` (label 0) sequences.

    Returns the mean loss and accuracy of the last epoch (training batches, dropout on).
    """
    disc.train()
    data = torch.cat([positives, negatives])  # [P+Q, T]
    labels = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).long().to(data.device)
    loss_sum = correct = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(data)).to(data.device)
        loss_sum, correct = 0.0, 0.0
        for lo in range(0, len(data), batch_size):
            idx = order[lo : lo + batch_size]
            x, y = data[idx], labels[idx]
            logits = disc(x)  # [b, 2]
            loss = disc.loss_from_logits(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(-1) == y).sum().item()
    return loss_sum / len(data), correct / len(data)


def _d_round(exp: Experiment, epochs: int) -> tuple[float, float]:
    s = exp.cfg.seqgan
    exp.generator.eval()
    negatives = exp.generator.sample(s.n_negative, batch_size=exp.cfg.eval.batch_size)
    positives = exp.task.train
    if s.n_negative < len(positives):  # balanced classes: as many fresh random positives as negatives
        positives = positives[torch.randperm(len(positives))[: s.n_negative].to(positives.device)]
    return train_discriminator(
        exp.modules["discriminator"], exp.optimizers["discriminator"], positives, negatives, epochs,
        exp.cfg.discriminator.batch_size,
    )


def pretrain_discriminator(exp: Experiment, start_round: int) -> None:
    s = exp.cfg.seqgan
    rounds = 0 if s.discriminator_init else s.d_pretrain_rounds
    bar = tqdm(range(start_round + 1, rounds + 1), desc="pretrain D", unit="round", disable=None)
    for r in bar:
        d_loss, d_acc = _d_round(exp, s.d_pretrain_epochs)
        bar.set_postfix(loss=f"{d_loss:.3f}", acc=f"{d_acc:.3f}")
        last = r == rounds
        if r % s.eval_every == 0 or last:
            exp.log(PRETRAIN_D, "step", r, rounds, {"d_loss": d_loss, "d_accuracy": d_acc})
        if r % s.checkpoint_every == 0 or last:
            exp.save(PRETRAIN_D, r)


def generator_step(exp: Experiment) -> tuple[float, float]:
    """One policy-gradient update on a fresh batch; returns (loss, mean reward)."""
    s = exp.cfg.seqgan
    gen = exp.generator
    disc = exp.modules["discriminator"]
    gen.eval()
    samples = gen.sample(s.g_batch_size)  # [B, T]
    policy = exp.rollout_policy.module
    rewards = rollout_rewards(policy, disc.prob_real, samples, s.rollout_num, max_batch=s.rollout_max_batch)
    gen.train()
    mask = gen.token_mask(samples)  # [B, T]: padding after EOS counts neither in the loss nor the mean reward
    loss = policy_gradient_loss(gen.log_probs(samples), rewards, mask=mask, baseline=s.baseline)
    opt = exp.optimizers["generator_adv"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if s.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(gen.parameters(), s.grad_clip)
    opt.step()
    return loss.item(), (rewards * mask).sum().item() / mask.sum().clamp(min=1).item()


def adversarial(exp: Experiment, start_iteration: int) -> None:
    s = exp.cfg.seqgan
    if start_iteration == 0:
        if exp.rollout_policy.ema is not None:  # the EMA copy starts from the pretrained generator
            exp.rollout_policy.ema.load_state_dict(exp.generator.state_dict())
        exp.log(ADVERSARIAL, "step", 0, s.iterations, exp.evaluate())
    d_stats = exp.state.setdefault("d_stats", {})  # the latest discriminator round's loss and accuracy
    bar = tqdm(range(start_iteration + 1, s.iterations + 1), desc="adversarial", unit="it", disable=None)
    for it in bar:
        results = [generator_step(exp) for _ in range(s.g_steps)]
        g_loss = sum(r[0] for r in results) / len(results)
        reward = sum(r[1] for r in results) / len(results)
        exp.rollout_policy.update()
        last = it == s.iterations
        if it % s.eval_every == 0 or last:
            exp.log(ADVERSARIAL, "step", it, s.iterations,
                    {"g_loss": g_loss, "mean_reward": reward, **d_stats, **exp.evaluate()})
        for _ in range(s.d_steps):
            d_loss, d_acc = _d_round(exp, s.d_epochs)
            d_stats.update(d_loss=d_loss, d_accuracy=d_acc)
        bar.set_postfix(reward=f"{reward:.3f}", **{k: f"{v:.3f}" for k, v in d_stats.items()})
        if it % s.checkpoint_every == 0 or last:
            exp.save(ADVERSARIAL, it)
    exp.save_weights("generator.safetensors", ["generator"])
