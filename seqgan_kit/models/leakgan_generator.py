"""LeakGAN's hierarchical generator (``generator.kind = "leakgan"``; Guo et al., AAAI 2018, code CR-Gjx/LeakGAN).

A Manager LSTM reads, at every step, the feature vector the discriminator's CNN extracts from the prefix
generated so far (the *leaked* feature) and emits a unit-length sub-goal; a Worker LSTM reads the tokens and
emits, per token, a ``K``-dimensional row; the token logits are those rows against the projection ``w`` of the
current goal::

    prefix y_<t  -> leaked CNN feature f_t [D]          (positions >= t hold the "unfilled" token, id V)
    Manager:  h^M_t = LSTM(f_t, h^M_{t-1});  g_t = normalize(W_o h^M_t + b_o)        [D]
    goal:     G_t = goal_init for t < c;  G_t = sum_{j=(m-1)c+1}^{mc} g_j for m = floor(t / c) >= 1   [D]
    Worker:   h^W_t = LSTM(emb(y_{t-1}), h^W_{t-1})  (y_{-1} = start token)
              O_t = W_w (h^W_t) + b_w                 [V, K];   w_t = normalize(G_t @ W_goal)   [K]
    logits of y_t = O_t @ w_t                         [V]

Sizes of the official synthetic code: emb 32, hidden 32, goal_size ``K`` 16, step_size ``c`` 4, ``D`` = 1,720
(the discriminator's feature), every weight ~ N(0, 0.1), goal_init truncated N(0, 0.1).

The goal is the official code's *segment* sum: it changes every ``c`` steps (not the paper's sliding window) and
is built from the Manager's steps ``(m-1)c+1 .. mc``, as in the official teacher-forced graph (``preTrain``, which
every training loss uses). The official sampler (``_g_recurrence``) switches goals one Manager step earlier, so
there it samples from a slightly different model than it trains; here sampling, rollouts and teacher forcing are
one model (``tests/test_leakgan.py`` checks step-by-step generation against teacher-forced log-likelihoods).

The leaked feature extractor is held inside the generator (``leak``: a copy of the discriminator's CNN with one
extra embedding row for the unfilled positions, the official code's id -1; that row is never trained by the
discriminator, as in the official code) so that a checkpointed generator samples on its own. The LeakGAN
trainer copies the discriminator's weights into it after every discriminator update (the official code shares
the variables). Its weights take no gradient from the generator's losses (``requires_grad`` off), as in the
official code, whose generator optimizers update only the Manager's and the Worker's variables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, positive
from .discriminator import CNNDiscriminator, FilterChecks
from .generator import SequenceGenerator
from .registry import register

NORM_EPS = 1e-6
"""``F.normalize``'s floor on the norm: TensorFlow's ``l2_normalize`` floors the squared norm at 1e-12."""

PAPER_FILTER_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
PAPER_NUM_FILTERS = [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]


@dataclass
class LeakGANGeneratorConfig(FilterChecks):
    """The ``[generator]`` table of LeakGAN's generator (official synthetic sizes by default).

    ``feature_emb_dim``, ``filter_sizes`` and ``num_filters`` describe the discriminator whose feature leaks; the
    LeakGAN trainer refuses a recipe whose ``[discriminator]`` differs.
    """

    kind: str = "leakgan"
    emb_dim: int = 32
    hidden_dim: int = 32
    goal_size: int = 16
    """``K``: width of the Worker's per-token rows and of the projected goal ``w``."""
    step_size: int = 4
    """``c``: the goal changes every ``c`` tokens; the Manager's loss compares it with the feature change over
    those ``c`` tokens. The sequence length must be a multiple of it."""
    init_std: float = 0.1
    feature_emb_dim: int = 64
    filter_sizes: list[int] = field(default_factory=lambda: list(PAPER_FILTER_SIZES))
    num_filters: list[int] = field(default_factory=lambda: list(PAPER_NUM_FILTERS))

    def validate(self) -> None:
        positive(self, "emb_dim", "hidden_dim", "goal_size", "step_size", "init_std", "feature_emb_dim")
        self.check_filters()

    def check_length(self, seq_len: int, where: str) -> None:
        """ConfigError when the sequence length is no multiple of ``step_size`` or a filter is wider."""
        if seq_len % self.step_size:
            raise ConfigError("generator.step_size", f"{self.step_size} must divide the sequence length {seq_len} "
                                                     f"({where}): the goals span whole segments of step_size tokens")
        if max(self.filter_sizes) > seq_len:
            raise ConfigError("generator.filter_sizes", f"filter of width {max(self.filter_sizes)} exceeds the "
                                                        f"sequence length {seq_len} ({where})")


def _float32(device: torch.device):
    """LeakGAN's generator computes in float32 under any autocast (``nn.LSTM`` has no bfloat16 kernel on some CPUs,
    and sampling and teacher forcing must agree)."""
    return torch.autocast(device.type, enabled=False)


class LeakGANState(NamedTuple):
    """The recurrent state at position ``t`` (its logits give ``y[t]``); tensors ``[B, ...]``."""

    worker_h: torch.Tensor  # [B, H]
    worker_c: torch.Tensor  # [B, H]
    manager_h: torch.Tensor  # [B, H]
    manager_c: torch.Tensor  # [B, H]
    pending: torch.Tensor  # [B, D]: sub-goals summed since the last goal switch
    goal: torch.Tensor  # [B, D]: the goal G_t
    prefix: torch.Tensor  # [B, T]: y[:t], then the unfilled id
    position: int


class TeacherForced(NamedTuple):
    """What one teacher-forced pass gives (see :meth:`LeakGANGenerator.teacher_forced`)."""

    logits: torch.Tensor  # [B, T, V]
    features: torch.Tensor  # [B, T+1, D]: f_0 .. f_T (f_t: the feature of y[:t])
    goals: torch.Tensor  # [B, T, D]: G_t
    segment_goals: torch.Tensor  # [B, T/c, D]: the goal of each segment of c tokens


@register("generator", "leakgan", LeakGANGeneratorConfig)
class LeakGANGenerator(SequenceGenerator):
    """The Manager-Worker generator; see the module docstring for the equations."""

    capabilities = frozenset({"language_model", "leaked_features"})

    def __init__(
        self,
        vocab_size: int,
        seq_len: int = 20,
        start_token: int = 0,
        eos_token: int | None = None,
        pad_token: int = 0,
        banned_tokens: Sequence[int] = (),
        emb_dim: int = 32,
        hidden_dim: int = 32,
        goal_size: int = 16,
        step_size: int = 4,
        init_std: float = 0.1,
        feature_emb_dim: int = 64,
        filter_sizes: Sequence[int] = tuple(PAPER_FILTER_SIZES),
        num_filters: Sequence[int] = tuple(PAPER_NUM_FILTERS),
    ) -> None:
        super().__init__(vocab_size, seq_len, start_token, eos_token, pad_token, banned_tokens)
        if min(emb_dim, hidden_dim, goal_size, step_size) < 1:
            raise ValueError(f"emb_dim, hidden_dim, goal_size and step_size must be positive, got {emb_dim}, "
                             f"{hidden_dim}, {goal_size}, {step_size}")
        if seq_len % step_size:
            raise ValueError(f"step_size {step_size} must divide seq_len {seq_len}")
        self.emb_dim, self.hidden_dim, self.goal_size, self.step_size = emb_dim, hidden_dim, goal_size, step_size
        self.unfilled = vocab_size
        """The id of a position not generated yet (an extra embedding row of the leaked CNN)."""
        self.leak = CNNDiscriminator(vocab_size + 1, seq_len, feature_emb_dim, filter_sizes, num_filters,
                                     dropout_keep=1.0, l2_reg=0.0, pad_token=pad_token if eos_token is not None
                                     else None)
        self.leak.requires_grad_(False)
        d, h, k = self.leak.num_features, hidden_dim, goal_size
        self.feature_dim = d
        # Worker
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.worker = nn.LSTM(emb_dim, h, batch_first=True)
        self.worker_out = nn.Parameter(torch.empty(h, k, vocab_size))  # W_w, laid out [H, K, V]
        self.worker_out_bias = nn.Parameter(torch.empty(k, vocab_size))  # b_w  [K, V]
        self.goal_proj = nn.Parameter(torch.empty(d, k))  # the official g_change  [D, K]
        # Manager
        self.manager = nn.LSTM(d, h, batch_first=True)
        self.manager_out = nn.Linear(h, d)
        self.goal_init = nn.Parameter(torch.empty(d))
        self.reset_parameters(init_std)

    @classmethod
    def from_config(cls, cfg: LeakGANGeneratorConfig, **sizes: Any) -> LeakGANGenerator:
        """Build from the ``[generator]`` table; ``sizes``: vocab_size, seq_len and the special tokens."""
        return cls(emb_dim=cfg.emb_dim, hidden_dim=cfg.hidden_dim, goal_size=cfg.goal_size, step_size=cfg.step_size,
                   init_std=cfg.init_std, feature_emb_dim=cfg.feature_emb_dim, filter_sizes=cfg.filter_sizes,
                   num_filters=cfg.num_filters, **sizes)

    def reset_parameters(self, std: float) -> None:
        """The official initialisation: every Worker and Manager weight and bias ~ N(0, std) (one bias per LSTM
        gate: ``bias_hh`` is zero), goal_init truncated N(0, std)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith("leak."):
                    continue
                if name.endswith("bias_hh_l0"):
                    p.zero_()
                elif name == "goal_init":
                    nn.init.trunc_normal_(p, 0.0, std, -2 * std, 2 * std)
                else:
                    p.normal_(0.0, std)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the module (stored in checkpoints)."""
        return {**self.special_tokens(), "emb_dim": self.emb_dim, "hidden_dim": self.hidden_dim,
                "goal_size": self.goal_size, "step_size": self.step_size, "feature_emb_dim": self.leak.emb_dim,
                "filter_sizes": list(self.leak.filter_sizes), "num_filters": list(self.leak.num_filters)}

    def state_floats(self) -> int:
        """Per position: the Worker's embedding and LSTM (``E + 6H``), the Manager's input feature, LSTM and
        sub-goal (``D + 6H + D``), the goal and ``w`` (``D + K``) and the outer product ``h (x) w`` (``H K``)."""
        d, h, k = self.feature_dim, self.hidden_dim, self.goal_size
        return self.emb_dim + 12 * h + 3 * d + k + h * k

    # ----------------------------------------------------------------- parameter groups
    def worker_parameters(self) -> list[nn.Parameter]:
        """The official ``worker_params``: embedding, Worker LSTM, output rows and the goal projection."""
        return [self.embedding.weight, *self.worker.parameters(), self.worker_out, self.worker_out_bias,
                self.goal_proj]

    def manager_parameters(self) -> list[nn.Parameter]:
        """The official ``manager_params``: Manager LSTM, its output layer and goal_init."""
        return [*self.manager.parameters(), *self.manager_out.parameters(), self.goal_init]

    def sync_features(self, disc: CNNDiscriminator) -> None:
        """Copy the discriminator's weights into the leaked feature extractor (the unfilled row is kept)."""
        own, theirs = self.leak.state_dict(), disc.state_dict()
        if set(own) != set(theirs):
            raise ValueError("the discriminator is not a CNN of the leaked extractor's architecture")
        with torch.no_grad():
            for key, value in theirs.items():
                target = own[key]
                if key == "embedding.weight":
                    target = target[: self.vocab_size]
                if target.shape != value.shape:
                    raise ValueError(f"discriminator weight {key} has shape {tuple(value.shape)}, the leaked "
                                     f"extractor expects {tuple(target.shape)}")
                target.copy_(value)

    # ----------------------------------------------------------------- pieces
    def features(self, prefixes: torch.Tensor) -> torch.Tensor:
        """Leaked features of ``[N, T]`` prefixes (unfilled positions hold ``self.unfilled``) -> ``[N, D]``, without
        dropout and without gradient to the extractor."""
        with _float32(prefixes.device):
            return self.leak.features(prefixes)

    def goal_weights(self, goals: torch.Tensor) -> torch.Tensor:
        """``w = normalize(G @ W_goal)``: ``[..., D]`` -> ``[..., K]``."""
        return F.normalize(goals @ self.goal_proj, dim=-1, eps=NORM_EPS)

    def token_logits(self, hidden: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``O_t @ w_t`` with ``O_t = W_w h + b_w``: hidden ``[..., H]`` and ``w [..., K]`` -> logits ``[..., V]``.

        Computed as ``(h (x) w) @ W_w + w @ b_w``, so the ``[V, K]`` rows are never materialised."""
        h, k, v = self.hidden_dim, self.goal_size, self.vocab_size
        outer = (hidden.unsqueeze(-1) * w.unsqueeze(-2)).flatten(-2)  # [..., H, K] -> [..., H*K]
        logits = outer @ self.worker_out.view(h * k, v) + w @ self.worker_out_bias  # [..., V]
        if self.variable_length or self.banned_tokens:
            logits = logits + self.logit_bias
        return logits

    def sub_goals(self, manager_hidden: torch.Tensor) -> torch.Tensor:
        """``g = normalize(W_o h^M + b_o)``: ``[..., H]`` -> ``[..., D]``."""
        return F.normalize(self.manager_out(manager_hidden), dim=-1, eps=NORM_EPS)

    def unfilled_prefixes(self, seqs: torch.Tensor) -> torch.Tensor:
        """Every prefix of ``seqs [B, T]``: ``[B, T+1, T]``, row ``t`` holding ``y[:t]`` then the unfilled id."""
        b, t = seqs.shape
        keep = torch.arange(t, device=seqs.device)[None, :] < torch.arange(t + 1, device=seqs.device)[:, None]
        return torch.where(keep[None], seqs[:, None, :], torch.full_like(seqs[:, None, :], self.unfilled))

    def prefix_features(self, seqs: torch.Tensor) -> torch.Tensor:
        """The leaked feature of every prefix of ``seqs [B, T]``: ``[B, T+1, D]``, row ``t`` the feature of ``y[:t]``.

        Equal to :meth:`features` of :meth:`unfilled_prefixes` (``tests/test_leakgan.py``) at about the cost of
        two convolution passes instead of ``T + 1``: a window of width ``k`` starting at ``p`` holds, in prefix
        ``t``, ``r = clamp(t - p, 0, k)`` real tokens and then unfilled ones, so its map is
        ``M_r[p] = sum_{j<r} W_j e(y_{p+j}) + sum_{j>=r} W_j e(unfilled) + b``; ``M_r`` for every ``r`` comes
        from one product of the embeddings with every offset's kernel, and prefix ``t`` max-pools
        ``M_{clamp(t-p,0,k)}[p]`` over ``p``. Variable-length text (padding masked in the pooling) takes the
        direct path.
        """
        b, t = seqs.shape
        leak = self.leak
        if leak.pad_token is not None:
            return self.features(self.unfilled_prefixes(seqs).reshape(b * (t + 1), t)).view(b, t + 1, -1)
        e = leak.emb_dim
        emb = leak.embedding(seqs)  # [B, T, E]
        unfilled = leak.embedding.weight[self.unfilled]  # [E]
        prefix = torch.arange(t + 1, device=seqs.device)[:, None]  # [T+1, 1]
        pooled = []
        for k, conv in zip(leak.filter_sizes, leak.convs, strict=True):
            p = t - k + 1
            kernel = conv.weight.view(-1, k, e)  # [F, k*E] -> [F, k, E]
            per_offset = torch.einsum("bte,fke->bktf", emb, kernel)  # [B, k, T, F]: W_j e(y_pos)
            real = torch.stack([per_offset[:, j, j:j + p] for j in range(k)], dim=1)  # [B, k, P, F]: W_j e(y_{p+j})
            heads = torch.cat([real.new_zeros(b, 1, p, real.shape[-1]), real.cumsum(dim=1)], dim=1)  # [B, k+1, P, F]
            fill = torch.einsum("fke,e->kf", kernel, unfilled)  # [k, F]: W_j e(unfilled)
            tails = torch.cat([fill.flip(0).cumsum(0).flip(0), fill.new_zeros(1, fill.shape[1])])  # [k+1, F]
            maps = heads + (tails + conv.bias)[None, :, None, :]  # [B, k+1, P, F]: M_r[p]
            starts = torch.arange(p, device=seqs.device)[None, :]  # [1, P]
            r = (prefix - starts).clamp(0, k)  # [T+1, P]
            pooled.append(maps[:, r, starts.expand_as(r)].amax(dim=2))  # [B, T+1, P, F] -> [B, T+1, F]
        return leak.highway_features(torch.cat(pooled, dim=-1))  # [B, T+1, D]

    # ----------------------------------------------------------------- teacher forcing
    def teacher_forced(self, seqs: torch.Tensor, detach_goals: bool = False) -> TeacherForced:
        """One teacher-forced pass over ``seqs [B, T]``: logits, leaked features, goals (see :class:`TeacherForced`).

        ``detach_goals``: the logits take no gradient into the Manager (the official Worker losses update only
        the Worker's variables).
        """
        with _float32(seqs.device):
            return self._teacher_forced(seqs, detach_goals)

    def _teacher_forced(self, seqs: torch.Tensor, detach_goals: bool) -> TeacherForced:
        b, t = seqs.shape
        c, d = self.step_size, self.feature_dim
        if t % c:
            raise ValueError(f"sequence length {t} is not a multiple of step_size {c}")
        n = t // c
        feats = self.prefix_features(seqs)  # [B, T+1, D]
        manager_hidden, _ = self.manager(feats[:, :t])  # reads f_0 .. f_{T-1}: [B, T, H]
        sub = self.sub_goals(manager_hidden)  # [B, T, D]: g_0 .. g_{T-1}
        # segment m >= 1 has the goal sum_{j=(m-1)c+1}^{mc} g_j: g_1 .. g_{T-1} and a zero, summed c at a time
        later = torch.cat([sub[:, 1:], sub.new_zeros(b, 1, d)], dim=1)  # [B, T, D]: g_1 .. g_{T-1}, 0
        sums = later.view(b, n, c, d).sum(dim=2)  # [B, T, D] -> [B, n, c, D] -> [B, n, D]
        segment_goals = torch.cat([self.goal_init.expand(b, 1, d), sums[:, : n - 1]], dim=1)  # [B, n, D]
        goals = segment_goals.repeat_interleave(c, dim=1)  # [B, T, D]
        w = self.goal_weights(goals.detach() if detach_goals else goals)  # [B, T, K]
        hidden, _ = self.worker(self.embedding(self.inputs(seqs)))  # [B, T, H]
        return TeacherForced(self.token_logits(hidden, w), feats, goals, segment_goals)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits. ``seqs [B, T]`` -> ``[B, T, V]`` (position t predicts ``seqs[:, t]``)."""
        return self.teacher_forced(seqs).logits

    # ----------------------------------------------------------------- incremental API
    def initial_state(self, batch: int) -> LeakGANState:
        """State at position 0: the Worker has read the start token, the Manager the feature of the empty prefix
        (its sub-goal is not summed into any goal, as in the official graph); the goal is goal_init."""
        dev, h, d = self.device, self.hidden_dim, self.feature_dim
        prefix = torch.full((batch, self.seq_len), self.unfilled, dtype=torch.long, device=dev)  # [B, T]
        zeros = torch.zeros(batch, h, device=dev, dtype=self.goal_init.dtype)
        start = torch.full((batch,), self.start_token, dtype=torch.long, device=dev)
        wh, wc = self._worker_cell(start, (zeros, zeros))
        empty = self.features(prefix[:1]).expand(batch, d)  # every row's empty prefix has the same feature
        mh, mc = self._manager_cell(empty, (zeros, zeros))
        goal = self.goal_init.expand(batch, d)
        return LeakGANState(wh, wc, mh, mc, torch.zeros_like(goal), goal, prefix, 0)

    def advance(self, tokens: torch.Tensor, state: LeakGANState) -> LeakGANState:
        """Feed ``tokens [B]`` at position ``t``: the Worker reads them, the Manager reads the feature of
        ``y[:t+1]``; its sub-goal joins the pending sum, which becomes the goal at every multiple of ``c``."""
        with _float32(tokens.device):
            return self._advance(tokens, state)

    def _advance(self, tokens: torch.Tensor, state: LeakGANState) -> LeakGANState:
        t = state.position
        prefix = state.prefix.clone()
        prefix[:, t] = tokens
        wh, wc = self._worker_cell(tokens, (state.worker_h, state.worker_c))
        mh, mc = self._manager_cell(self.features(prefix), (state.manager_h, state.manager_c))
        pending = state.pending + self.sub_goals(mh)  # [B, D]
        goal = state.goal
        if (t + 1) % self.step_size == 0:
            goal, pending = pending, torch.zeros_like(pending)
        return LeakGANState(wh, wc, mh, mc, pending, goal, prefix, t + 1)

    def logits(self, state: LeakGANState) -> torch.Tensor:
        """Next-token logits ``[B, V]`` at ``state``."""
        with _float32(state.goal.device):
            return self.token_logits(state.worker_h, self.goal_weights(state.goal))

    def _worker_cell(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        lstm = self.worker
        return torch.lstm_cell(self.embedding(tokens), state, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                               lstm.bias_hh_l0)

    def _manager_cell(self, feature: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        lstm = self.manager
        return torch.lstm_cell(feature, state, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                               lstm.bias_hh_l0)

    @staticmethod
    def repeat_state(state: LeakGANState, times: int) -> LeakGANState:
        """``state`` of ``B`` rows -> ``times * B`` rows (the batch tiled ``times`` times: row ``r*B + b``)."""
        tensors = [s.repeat(times, *([1] * (s.dim() - 1))) for s in state[:-1]]
        return LeakGANState(*tensors, state.position)
