"""The synthetic task of the SeqGAN paper: an oracle LSTM supplies the data and judges the samples."""

from __future__ import annotations

import torch

from .config import EvalConfig, OracleConfig
from .errors import UserError
from .generator import Generator
from .metrics.nll import nll_oracle, nll_test
from .oracle import build_oracle
from .tokens import read_token_file


class SyntheticTask:
    """Oracle, training sequences ``[n_train, T]`` and held-out sequences ``[n_test, T]``.

    The data are oracle samples drawn with a generator seeded from ``data_seed`` (or read from
    ``oracle.train_file``), so the same recipe and seed give the same task.
    """

    def __init__(self, cfg: OracleConfig, eval_cfg: EvalConfig, data_seed: int, device: torch.device) -> None:
        self.cfg = cfg
        self.eval_cfg = eval_cfg
        self.oracle = build_oracle(
            cfg.weights, cfg.seed, cfg.vocab_size, cfg.emb_dim, cfg.hidden_dim, cfg.seq_len, cfg.start_token
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

    @property
    def vocab_size(self) -> int:
        return self.oracle.vocab_size

    @property
    def seq_len(self) -> int:
        return self.cfg.seq_len

    def evaluate(self, generator: Generator) -> dict[str, float]:
        """NLL_oracle of fresh generator samples and NLL_test on the held-out oracle samples."""
        return {
            "nll_oracle": nll_oracle(generator, self.oracle, self.eval_cfg.n_samples, self.eval_cfg.batch_size),
            "nll_test": nll_test(generator, self.test, self.eval_cfg.batch_size),
        }
