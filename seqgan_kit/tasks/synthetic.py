"""The synthetic task of the SeqGAN paper: an oracle LSTM supplies the data and judges the samples."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ..config import ConfigError, one_of, positive
from ..data.tokens import read_token_file
from ..distributed import Ranks
from ..errors import UserError
from ..metrics.nll import nll_oracle_sum, sequence_nll_sum
from ..models.generator import SequenceGenerator
from ..models.oracle import ORACLE_KINDS, build_oracle
from .evaluation import EvalConfig


@dataclass
class OracleConfig:
    """The synthetic task: a target LSTM that generates the "real" data and scores generated samples."""

    kind: str = "seqgan"
    """``seqgan``: SeqGAN's target LSTM (``weights``, or random N(0, 1) weights from ``seed``). ``texygen``: the
    ``OracleLstm`` of RelGAN / Texygen, random N(0, 1) from ``seed`` with the reference's per-tensor seeds (see
    :mod:`seqgan_kit.models.oracle`), for RelGAN's oracle numbers like for like."""
    weights: str = ""
    """Path to the reference oracle ``.npz`` (keys p00-p14). Empty: random N(0, 1) weights from ``seed``."""
    seed: int = 88
    """Seed of the random oracle (independent of the run seed, so the task stays fixed across runs)."""
    vocab_size: int = 5000
    emb_dim: int = 32
    hidden_dim: int = 32
    seq_len: int = 20
    start_token: int = 0
    n_train: int = 9984
    """Number of oracle samples in the training set (the paper: 156 batches of 64)."""
    n_test: int = 9984
    """Number of held-out oracle samples for NLL_test."""
    train_file: str = ""
    """Optional file of token-id lines to train on instead of fresh oracle samples."""

    def validate(self) -> None:
        positive(self, "vocab_size", "emb_dim", "hidden_dim", "seq_len", "n_train", "n_test")
        one_of(self, "kind", ORACLE_KINDS)
        if self.kind == "texygen" and self.weights:
            raise ConfigError("weights", "must be empty with oracle.kind = 'texygen' (built from oracle.seed)")
        if not 0 <= self.start_token < self.vocab_size:
            raise ConfigError("start_token", f"must lie in [0, {self.vocab_size}), got {self.start_token}")


class SyntheticTask:
    """Oracle, training sequences ``[n_train, T]`` and held-out sequences ``[n_test, T]``.

    The data are oracle samples drawn with a generator seeded from ``data_seed`` (or read from
    ``oracle.train_file``), so the same recipe and seed give the same task.
    """

    def __init__(self, cfg: OracleConfig, eval_cfg: EvalConfig, data_seed: int, device: torch.device) -> None:
        self.cfg = cfg
        self.eval_cfg = eval_cfg
        self.oracle = build_oracle(
            cfg.weights, cfg.seed, cfg.vocab_size, cfg.emb_dim, cfg.hidden_dim, cfg.seq_len, cfg.start_token, cfg.kind
        ).to(device)
        if cfg.weights and self.oracle.vocab_size != cfg.vocab_size:
            raise UserError(
                f"oracle.vocab_size is {cfg.vocab_size} but {cfg.weights} has a vocabulary of "
                f"{self.oracle.vocab_size}; set oracle.vocab_size={self.oracle.vocab_size}"
            )
        rng = torch.Generator(device=device).manual_seed(data_seed)
        if cfg.train_file:
            self.train = read_token_file(cfg.train_file, cfg.vocab_size, cfg.seq_len).to(device)
        else:
            self.train = self.oracle.sample(cfg.n_train, generator=rng, batch_size=eval_cfg.batch_size)
        self.test = self.oracle.sample(cfg.n_test, generator=rng, batch_size=eval_cfg.batch_size)
        self._fingerprint = {"kind": "synthetic", "oracle": _sha256(*self.oracle.parameters()),
                             "train": _sha256(self.train)}


    @property
    def vocab_size(self) -> int:
        return self.oracle.vocab_size

    @property
    def seq_len(self) -> int:
        return self.cfg.seq_len

    def special_tokens(self) -> dict[str, int | None]:
        """The generator's special tokens: the oracle's start token; no EOS (fixed length)."""
        return {"start_token": self.cfg.start_token}

    def fingerprint(self) -> dict[str, str | int]:
        """What identifies the task's data (stored in checkpoints; a resume with another oracle is refused)."""
        return dict(self._fingerprint)

    def evaluate(self, generator: SequenceGenerator, rng: torch.Generator | None = None,
                 ranks: Ranks | None = None) -> dict[str, float]:
        """NLL_oracle of fresh generator samples (drawn with ``rng``), NLL_test on the held-out samples and, when
        ``eval.nll_gen``, RelGAN's NLL_gen on the training samples (every position counts: the oracle's
        sequences are fixed-length, which is what ``data.ending = "pad"`` means for text).

        With several ``ranks`` each samples its share of ``eval.n_samples`` (with its own ``rng``) and scores its
        share of the test set; the sums are added over the ranks before dividing.
        """
        ranks = ranks or Ranks()
        e = self.eval_cfg
        oracle = nll_oracle_sum(generator, self.oracle, ranks.count(e.n_samples), e.batch_size, rng)
        test = sequence_nll_sum(generator, ranks.shard(self.test), e.batch_size)
        o_sum, o_count, t_sum, t_count = ranks.sums(*oracle, *test)
        result = {"nll_oracle": o_sum / max(o_count, 1), "nll_test": t_sum / max(t_count, 1)}
        if e.nll_gen:
            g_sum, g_count = ranks.sums(*sequence_nll_sum(generator, ranks.shard(self.train), e.batch_size))
            result["nll_gen"] = g_sum / max(g_count, 1)
        return result


def _sha256(*tensors: torch.Tensor) -> str:
    """A hash of tensors' values (for fingerprints)."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
