"""Monte Carlo rollout rewards for SeqGAN: ``Q(y_<t, y_t)`` estimated by completing each prefix N times.

For a batch of generated sequences ``seqs [B, T]`` the reward of the token at position ``t - 1`` (a prefix of
length ``t``) is the mean, over ``N`` rollouts, of ``reward_fn`` on the prefix completed by the rollout
policy; the reward of the last position is ``reward_fn`` of the sequence itself.

The batched scheme (:func:`rollout_rewards`)
-------------------------------------------
Let ``L = T - 1`` prefix lengths (``t = 1 .. T-1``) and ``R = L * N * B`` continuations. Every continuation
has its own row in one preallocated buffer, ordered **prefix-length-major**::

    row r = ((t - 1) * N + n) * B + b        t in [1, T-1], n in [0, N), b in [0, B)

so ``completions.view(L, N, B, T)[t - 1, n, b]`` is rollout ``n`` of sequence ``b`` from prefix length ``t``.

1. One teacher-forced pass ``generator.prefix_states(seqs)`` gives the state at every position
   (``[B, T, H]``); the state at position ``t`` is the starting state of every continuation of the
   length-``t`` prefix. No prefix is ever re-fed.
2. Sampling is step-synchronous. At step ``s = 1 .. T-1`` (filling position ``s``) the continuations with
   prefix length ``t <= s`` are active: by the ordering above they are exactly the rows ``[0, s*N*B)``, a
   prefix of the buffer that grows by one block of ``N*B`` rows per step. The new block (``t = s``) takes its
   state from the teacher-forced pass, replicated N times; the older blocks carry the state after their own
   sampled token. All active rows get one logits + sample (in row blocks, see Memory); then, when
   ``s < T-1``, all of them are advanced by their token in one LSTM step. So each continuation of prefix
   length ``t`` samples exactly ``T - t`` tokens and takes ``T - t - 1`` LSTM steps -- the same tokens the
   reference samples, with no prefix recomputation and no wasted rows.
3. ``reward_fn`` scores the ``R`` completions in chunks of ``max_batch`` rows; the flat scores ``[R]`` are
   viewed as ``[L, N, B]`` (the row order above), averaged over N and transposed to ``[B, L]``. The last
   column is ``reward_fn(seqs)``, computed once.

Variable-length text: a row whose prefix already contains EOS continues with PAD only, and a row that samples
EOS writes PAD afterwards, exactly as :meth:`SequenceGenerator.generate` does. Only live rows (not yet ended) are
sampled and advanced, and a completion of an ended prefix is the sequence itself, so its reward is the final
reward without scoring it again. (The rewards of positions after EOS are masked out of the policy gradient.)

Memory: the per-row recurrent state (``2 * R * H`` floats) and the completions (``R * T`` ids) are kept for
all rows (5 MB at paper sizes), and one LSTM step over all active rows needs ``4 * R * H`` more for its gates.
The large tensors -- logits ``[rows, V]`` and the discriminator's intermediates -- exist for at most
``max_batch`` rows at once: each step is sampled in row blocks of ``max_batch`` rows on an accelerator and
``min(max_batch, LOGITS_PER_BLOCK / V)`` rows on CPU, where a block's logits stay in cache between the
projection that writes them and the sampler's one pass that reads them.

Cost (CPU, the default ``inverse_cdf`` sampler): per sampled token, the projection ``h @ W.T`` (without its
bias) and one pass of a numba kernel over the ``V`` logits that adds the bias, exponentiates and locates the
token (:mod:`seqgan_kit.models.sampling`); the LSTM steps are batched per step. ``eval/results/rollout.md``
has the measured breakdown and the floor.

Randomness: draws are taken in row order, step by step, one float32 uniform per row for the inverse-CDF
samplers. With the CPU generator each row's draw comes from the same serial stream regardless of block size
and thread count, so the result does not depend on ``max_batch`` for a fixed ``rng`` seed (tests check this);
on CUDA it may.

The rollout policy (:class:`RolloutPolicy`)
-------------------------------------------
The SeqGAN reference keeps a "delayed" rollout network updated as ``0.8 * old + 0.2 * new``, but the update is
inert: its sampling graph is built once from ``tf.identity`` reads of the live generator variables, and
``update_params`` only rebinds Python attributes that the built graph never reads, so every rollout in the
reference uses the *current* generator. ``RolloutPolicy(generator, decay=0)`` (the default, the paper's
effective behaviour) does the same; ``decay > 0`` (``seqgan.rollout_ema``) keeps a real EMA copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from ..models.lstm_generator import LSTMGenerator
from ..models.sampling import DEFAULT_SAMPLER

RewardFn = Callable[[torch.Tensor], torch.Tensor]
"""``seqs [M, T]`` int64 -> rewards ``[M]`` float (e.g. ``Discriminator.prob_real``)."""

LOGITS_PER_BLOCK = 1 << 21
"""Logits (rows x vocabulary) per sampling block: 8 MB of float32, ~419 rows at V = 5000 (a CPU cache knob;
it changes no result, see the module docstring). On the 2-core CPU of ``eval/results/rollout.md``, with the
one-pass sampler, blocks of 256-1024 rows took 8-20% less time than blocks of 104 (the previous setting,
chosen for the softmax sampler's several passes); larger blocks also mean fewer hand-offs between threads."""


def _check_args(seqs: torch.Tensor, num_rollouts: int, temperature: float) -> None:
    if num_rollouts < 1:
        raise ValueError(f"num_rollouts must be >= 1, got {num_rollouts}")
    if temperature < 0:
        raise ValueError(f"rollout temperature must be >= 0, got {temperature}")
    if seqs.dim() != 2 or seqs.shape[1] < 1:
        raise ValueError(f"expected a [B, T] batch of token ids with T >= 1, got shape {tuple(seqs.shape)}")
    if seqs.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"expected integer token ids, got dtype {seqs.dtype}")


def _score(reward_fn: RewardFn, seqs: torch.Tensor, max_batch: int) -> torch.Tensor:
    """``reward_fn`` over ``seqs [M, T]`` in chunks of ``max_batch`` rows -> ``[M]``."""
    out = []
    for lo in range(0, seqs.shape[0], max_batch):
        chunk = seqs[lo:lo + max_batch]  # [rows, T]
        r = reward_fn(chunk)
        if r.shape != chunk.shape[:1]:
            raise ValueError(f"reward_fn must map [M, T] to [M]; got {tuple(r.shape)} for M = "
                             f"{chunk.shape[0]}")
        out.append(r)
    return torch.cat(out)  # [M]


@torch.no_grad()
def rollout_completions(
    generator: LSTMGenerator,
    seqs: torch.Tensor,
    num_rollouts: int,
    *,
    temperature: float = 1.0,
    max_batch: int = 65536,
    rng: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
) -> torch.Tensor:
    """All Monte Carlo completions of every proper prefix, sampled in one step-synchronous growing batch.

    ``seqs [B, T]`` -> ``[T-1, N, B, T]`` int64 on the generator's device, where ``out[t-1, n, b, :t]`` equals
    ``seqs[b, :t]`` and ``out[t-1, n, b, t:]`` is rollout ``n``'s continuation (see the module docstring).
    ``max_batch`` bounds the rows whose logits are materialised at once.
    """
    _check_args(seqs, num_rollouts, temperature)
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    seqs = seqs.to(generator.device, torch.long)
    b, t_len = seqs.shape
    n = num_rollouts
    lengths = t_len - 1  # prefix lengths 1 .. T-1
    nb = n * b  # rows per prefix length
    rows = lengths * nb
    # [L, N, B, T] -> [R, T] (copy): every row starts as its source sequence; positions >= t get overwritten.
    comp = seqs.expand(lengths * n, b, t_len).reshape(rows, t_len)  # row ((t-1)*N + n)*B + b
    if rows == 0:
        return comp.view(lengths, n, b, t_len)  # [0, N, B, T]
    h_pre, c_pre = generator.prefix_states(seqs)  # each [B, T, H]; index t = start state of prefix length t
    h = h_pre.new_empty(rows, h_pre.shape[-1])  # [R, H]
    c = c_pre.new_empty(rows, c_pre.shape[-1])  # [R, H]
    done = None  # [R] bool, variable-length models only: the row's sequence has ended
    if generator.variable_length:
        ended = generator.eos_seen(seqs)  # [B, T]: EOS at or before position t
        done = torch.zeros(rows, dtype=torch.bool, device=seqs.device)
    block = max_batch  # accelerators: as few, as large launches as memory allows
    if generator.device.type == "cpu":  # CPU: cache-sized blocks (see LOGITS_PER_BLOCK)
        block = max(1, min(max_batch, LOGITS_PER_BLOCK // max(1, generator.vocab_size)))
    for s in range(1, t_len):
        active = s * nb  # rows with prefix length <= s
        # The block of prefix length t = s joins: [B, H] -> [N*B, H], row n*B + b.
        h[active - nb:active] = h_pre[:, s].repeat(n, 1)
        c[active - nb:active] = c_pre[:, s].repeat(n, 1)
        if done is not None:
            done[active - nb:active] = ended[:, s - 1].repeat(n)  # the prefix seqs[:, :s] has ended
        if done is not None:
            for lo in range(0, active, block):
                _step_live_rows(generator, comp, h, c, done, lo, min(active, lo + block), s, temperature, rng,
                                method)
            continue
        for lo in range(0, active, block):  # draws in row order, one block of logits at a time
            hi = min(active, lo + block)
            comp[lo:hi, s] = generator.draw((h[lo:hi], c[lo:hi]), s, temperature, rng, method)  # [rows]
        if s + 1 < t_len:  # one LSTM step for all active rows; the state after the last token is never needed
            h[:active], c[:active] = generator.advance(comp[:active, s], (h[:active], c[:active]))
    return comp.view(lengths, n, b, t_len)  # [R, T] -> [L, N, B, T]


def _step_live_rows(generator: LSTMGenerator, comp: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                    done: torch.Tensor, lo: int, hi: int, s: int, temperature: float,
                    rng: torch.Generator | None, method: str) -> None:
    """Variable-length step ``s`` for rows ``[lo, hi)``: rows that have ended get PAD; only the live rows
    are sampled and advanced (text rollouts end long before ``T``, so this skips most of the work)."""
    ended = done[lo:hi]  # [rows]
    comp[lo:hi, s].masked_fill_(ended, generator.pad_token)
    live = lo + (~ended).nonzero().squeeze(1)  # [m] absolute row ids
    if live.numel() == 0:
        return
    state = (h[live], c[live])  # each [m, H]
    tokens = generator.draw(state, s, temperature, rng, method)  # [m]
    comp[live, s] = tokens
    done[live] = tokens == generator.eos_token
    if s + 1 < comp.shape[1]:
        h[live], c[live] = generator.advance(tokens, state)


@torch.no_grad()
def rollout_rewards(
    generator: LSTMGenerator,
    reward_fn: RewardFn,
    seqs: torch.Tensor,
    num_rollouts: int,
    *,
    temperature: float = 1.0,
    max_batch: int = 65536,
    rng: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
) -> torch.Tensor:
    """Monte Carlo rollout rewards, batched (see the module docstring for the scheme).

    Args:
        generator: the rollout policy (e.g. ``RolloutPolicy.module``); its device is used throughout.
        reward_fn: ``[M, T]`` int64 -> ``[M]`` float, e.g. ``discriminator.prob_real``.
        seqs: ``[B, T]`` generated sequences.
        num_rollouts: ``N >= 1`` completions per prefix.
        temperature: sampling temperature of the continuations (0 = greedy).
        max_batch: rows sampled / scored at once (memory bound).
        rng: optional ``torch.Generator`` on the generator's device for the continuations.
        method: the exact sampler (:data:`seqgan_kit.models.sampling.SAMPLERS`).

    Returns:
        ``[B, T]`` rewards: column ``t - 1`` (``t < T``) is the mean over the N rollouts of ``reward_fn`` on
        the completions of ``seqs[:, :t]``; column ``T - 1`` is ``reward_fn(seqs)``.
    """
    comp = rollout_completions(generator, seqs, num_rollouts, temperature=temperature, max_batch=max_batch,
                               rng=rng, method=method)  # [L, N, B, T]
    lengths, n, b, t_len = comp.shape
    final = _score(reward_fn, seqs.to(comp.device, torch.long), max_batch)  # [B]
    rewards = final.new_empty(b, t_len)  # [B, T]
    rewards[:, t_len - 1] = final
    if lengths:
        flat_comp = comp.view(lengths * n * b, t_len)  # [L*N*B, T], row ((t-1)*N+n)*B+b
        if generator.variable_length:
            # A prefix that already holds EOS completes to the sequence itself: its reward is final[b].
            ended = generator.eos_seen(seqs.to(comp.device))[:, :lengths]  # [B, L]
            per_rollout = final.view(1, 1, b).expand(lengths, n, b).clone()  # [L, N, B]
            todo = ~ended.t().unsqueeze(1).expand(lengths, n, b)  # [L, N, B]
            if todo.any():
                per_rollout[todo] = _score(reward_fn, flat_comp[todo.reshape(-1)], max_batch)  # mask [L*N*B]
        else:
            per_rollout = _score(reward_fn, flat_comp, max_batch).view(lengths, n, b)  # [L*N*B] -> [L, N, B]
        rewards[:, :lengths] = per_rollout.mean(dim=1).transpose(0, 1)  # [L, B] -> [B, L]
    return rewards


@torch.no_grad()
def reference_rollout_rewards(
    generator: LSTMGenerator,
    reward_fn: RewardFn,
    seqs: torch.Tensor,
    num_rollouts: int,
    *,
    temperature: float = 1.0,
    rng: torch.Generator | None = None,
    method: str = DEFAULT_SAMPLER,
) -> torch.Tensor:
    """The original algorithm, one prefix length and one rollout at a time (for tests and the benchmark).

    For each rollout and each prefix length ``t = 1 .. T-1``: feed ``seqs[:, :t]`` token by token from the
    start state, sample the remaining ``T - t`` tokens with ``generator.generate``, score with ``reward_fn``.
    ``seqs [B, T]`` -> rewards ``[B, T]`` with the same meaning as :func:`rollout_rewards`.
    """
    _check_args(seqs, num_rollouts, temperature)
    seqs = seqs.to(generator.device, torch.long)
    b, t_len = seqs.shape
    final = reward_fn(seqs)  # [B]
    rewards = final.new_zeros(b, t_len)  # [B, T]
    ended = generator.eos_seen(seqs) if generator.variable_length else None  # [B, T]: EOS at or before t
    for _ in range(num_rollouts):
        for given in range(1, t_len):
            state = generator.initial_state(b)  # state at position 0
            for j in range(given):
                state = generator.advance(seqs[:, j], state)  # state at position j + 1
            done = None if ended is None else ended[:, given - 1]  # [B]: the prefix seqs[:, :given] has ended
            rest = generator.generate(state, t_len - given, temperature, rng, method, done)  # [B, T - given]
            full = torch.cat([seqs[:, :given], rest], dim=1)  # [B, T]
            rewards[:, given - 1] += reward_fn(full)
    rewards[:, : t_len - 1] /= num_rollouts
    rewards[:, t_len - 1] = final
    return rewards


class RolloutPolicy:
    """The generator used for rollouts: the live generator (``decay = 0``) or an EMA copy of it.

    With ``decay > 0`` a deep copy is kept and :meth:`update` applies
    ``p_ema = decay * p_ema + (1 - decay) * p`` to every parameter (call it after each generator update).
    ``decay = 0`` reproduces the reference's effective behaviour (its 0.8 "delayed" copy is inert, see the
    module docstring).
    """

    def __init__(self, generator: LSTMGenerator, decay: float = 0.0) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.generator = generator
        self.decay = float(decay)
        self.ema: LSTMGenerator | None = None
        if self.decay > 0:
            self.ema = copy.deepcopy(generator).requires_grad_(False)

    @property
    def module(self) -> LSTMGenerator:
        """The generator to roll out with."""
        return self.generator if self.ema is None else self.ema

    @torch.no_grad()
    def update(self) -> None:
        """Move the EMA copy towards the live generator (no-op when ``decay == 0``)."""
        if self.ema is None:
            return
        for p_ema, p in zip(self.ema.parameters(), self.generator.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - self.decay)  # decay * p_ema + (1 - decay) * p

    def state_dict(self) -> dict:
        """For checkpoints (exact resume needs the EMA weights): ``{"decay", "ema"}``."""
        return {"decay": self.decay, "ema": None if self.ema is None else self.ema.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if float(state["decay"]) != self.decay or (state["ema"] is None) != (self.ema is None):
            raise ValueError(f"rollout policy checkpoint has decay {state['decay']}, this run uses "
                            f"{self.decay}")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
