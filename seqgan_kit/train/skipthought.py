"""``algorithm = "skipthought"``: train a Skip-Thought sentence encoder on a corpus's neighbouring sentences.

Triples ``(s_i-1, s_i, s_i+1)`` come from the corpus as its card's ``neighbours`` key says
(:mod:`seqgan_kit.encoders.neighbours`): consecutive sentences of a paragraph (``sentences``; the Obama card,
whose lines are paragraphs) or consecutive clauses of a line (``clauses``; a quatrain's four lines, split after
``，``/``。``).
A corpus without ``neighbours`` cannot train this algorithm (a one-line error before anything runs).

Units are tokenized by the run's tokenizer and vocabulary (built from the corpus's training examples as for any
text run) and cut at ``data.max_tokens``. One epoch = one pass over the training triples in a fresh order drawn
from the run's ``data`` stream; a checkpoint after every epoch makes ``--resume`` exact. Metrics per epoch:
``train_loss`` and ``test_loss`` (per-token cross-entropy of both decoders; test: the first
``skipthought.eval_triples`` triples of the test split).

The run writes ``skipthought.safetensors`` after every epoch: the model's weights under ``model.encoder.*``, its
constructor arguments in the metadata and, with ``skipthought.center``, the mean training vector.
:mod:`seqgan_kit.encoders.loading` opens it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..config import ConfigError, non_negative, one_of, positive
from ..data.corpus import encode_examples, load_lines
from ..data.tokenization import PAD
from ..encoders.neighbours import triples_of
from ..encoders.skipthought import CENTER_KEY, CONDITIONING, MODEL_FILE, SkipThought, mean_vector
from ..errors import UserError
from ..runs.checkpoint import module_tensors, save_checkpoint
from .divergence import backward_step, finite_loss
from .registry import PhaseFn, register_algorithm
from .trainer import Trainer, run_units

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

PHASE = "skipthought"
CENTER_UNITS = 5000
"""Training units (evenly spaced over the distinct units) whose mean vector is stored as ``center``."""


@dataclass
class SkipThoughtConfig:
    """The ``[skipthought]`` table: model size and training."""

    emb_dim: int = 620
    dim: int = 2400
    """GRU width; a sentence vector has ``dim`` (uni-skip) or ``2 dim`` (bi-skip) entries."""
    bidirectional: bool = False
    """bi-skip: a forward and a backward encoder, concatenated."""
    conditioning: str = "init"
    """``init``: the decoders start from the sentence vector (released code); ``bias``: it enters every step."""
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    grad_clip: float = 10.0
    max_triples: int = 0
    """Use at most this many training triples (0: all)."""
    eval_triples: int = 1000
    center: bool = True
    """Store the mean vector of (up to :data:`CENTER_UNITS`) training units with the model; the encoder subtracts
    it before L2 normalisation (see :mod:`seqgan_kit.encoders.skipthought`)."""

    def validate(self) -> None:
        positive(self, "emb_dim", "dim", "epochs", "batch_size", "lr")
        non_negative(self, "grad_clip", "max_triples", "eval_triples")
        one_of(self, "conditioning", CONDITIONING)


@register_algorithm("skipthought", config=SkipThoughtConfig, pretrain=False, uses_generator=False)
class SkipThoughtTrainer(Trainer):
    """Builds the model, its Adam optimizer and the triples; runs the ``skipthought`` phase."""

    requires = {}

    def __init__(self, exp: Experiment) -> None:
        from .experiment import derived_seed

        super().__init__(exp)
        self.cfg: SkipThoughtConfig = exp.cfg.algo
        cfg = self.cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(exp.cfg.seed, "init:encoder"))
            model = SkipThought(exp.task.vocab_size, cfg.emb_dim, cfg.dim, cfg.bidirectional, cfg.conditioning)
        self.model = model.to(exp.device)
        exp.modules["encoder"] = self.model
        self.optimizer = exp.adam("encoder", self.model.parameters(), cfg.lr)
        self.wrapped = exp.wrap(self.model)
        self.train_units, self.train_triples = self._encode(0)
        self.test_units, self.test_triples = self._encode(1)
        if cfg.max_triples:
            self.train_triples = self.train_triples[:cfg.max_triples]
        if cfg.eval_triples:
            self.test_triples = self.test_triples[:cfg.eval_triples]
        if len(self.train_triples) == 0:
            raise UserError(f"skipthought: corpus {exp.cfg.data.name!r} gives no triple of consecutive "
                            f"{exp.cfg.data.neighbours} (each line needs at least 3)")
        print(f"[{PHASE}] {len(self.train_triples):,} training and {len(self.test_triples):,} test triples of "
              f"{exp.cfg.data.neighbours}; {sum(p.numel() for p in self.model.parameters()):,} parameters",
              flush=True)

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        if cfg.task != "text":
            raise ConfigError("task", "algorithm 'skipthought' trains on a text corpus: set task = \"text\"")
        if not cfg.data.neighbours:
            name = f"corpus {cfg.data.name!r}" if cfg.data.name else "this corpus"
            raise ConfigError("data.neighbours", f"{name} names no neighbouring sentences, which Skip-Thought "
                                                 f"trains on: set data.neighbours to 'sentences' or 'clauses'")

    def _encode(self, split: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit rows ``[U, max_tokens + 1]`` and index triples ``[N, 3]`` of the train (0) or test (1) split."""
        exp = self.exp
        data = dataclasses.replace(exp.cfg.data, segment="line", max_train=0)  # paragraphs, not sentences
        lines = load_lines(data, exp.cfg.seed)[split]
        if data.lowercase:
            lines = [line.lower() for line in lines]
        units, triples = triples_of(lines, exp.cfg.data.neighbours)
        tokens = [exp.task.tokenizer.tokenize(u) for u in units]
        rows, _ = encode_examples(tokens, exp.task.vocab, exp.cfg.data.max_tokens)  # [U, T]
        index = torch.tensor(triples, dtype=torch.long).reshape(-1, 3)  # [N, 3]
        return rows.to(exp.device), index.to(exp.device)

    def phases(self) -> list[tuple[str, PhaseFn]]:
        return [(PHASE, self.run)]

    def batch(self, units: torch.Tensor, triples: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(prev, cur, next)`` rows ``[B, T]`` of the index triples ``[B, 3]``."""
        return units[triples[:, 0]], units[triples[:, 1]], units[triples[:, 2]]

    def step(self, triples: torch.Tensor, epoch: int) -> float:
        """One Adam step on a global batch of index triples ``[B, 3]`` (each rank trains on its share); returns
        the batch loss."""
        self.model.train()
        ranks = self.exp.ranks
        if ranks.world == 1:
            loss = self.wrapped(lambda m: m(*self.batch(self.train_units, triples)))
        else:
            prev, cur, nxt = self.batch(self.train_units, triples)
            share = int((prev != PAD).sum() + (nxt != PAD).sum()) / ranks.world
            local = [ranks.shard(rows) for rows in (prev, cur, nxt)]
            with ranks.local_random():
                loss = self.wrapped(lambda m: m(*local, tokens=share))
        value = finite_loss(ranks.mean(loss), f"epoch {epoch}")
        backward_step(self.optimizer, loss, f"epoch {epoch}", self.cfg.grad_clip, self.model.parameters())
        return value

    @torch.no_grad()
    def test_loss(self) -> float:
        if len(self.test_triples) == 0:
            return float("nan")
        self.model.eval()
        total, n = 0.0, 0
        for lo in range(0, len(self.test_triples), self.cfg.batch_size):
            part = self.test_triples[lo:lo + self.cfg.batch_size]
            total += self.model(*self.batch(self.test_units, part)).item() * len(part)
            n += len(part)
        return total / n

    def save_model(self) -> None:
        exp = self.exp
        if not exp.ranks.is_main:
            return
        meta = {"skipthought": self.model.config(), **exp.vocab_meta(), "corpus": exp.cfg.data.name,
                "neighbours": exp.cfg.data.neighbours}
        tensors = module_tensors("encoder", self.model)
        if self.cfg.center:
            tensors[CENTER_KEY] = mean_vector(self.model, self.train_units, CENTER_UNITS)
        save_checkpoint(exp.run_dir.path / MODEL_FILE, tensors, meta)

    def epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training triples in a fresh order; writes the model file; the epoch's losses."""
        exp, cfg = self.exp, self.cfg
        order = torch.randperm(len(self.train_triples), generator=exp.rng("data")).to(self.train_triples.device)
        total, batches = 0.0, 0
        for lo in range(0, len(order), cfg.batch_size):
            if len(order[lo:lo + cfg.batch_size]) < exp.ranks.world:  # too few rows to split (several ranks)
                continue
            total += self.step(self.train_triples[order[lo:lo + cfg.batch_size]], epoch)
            batches += 1
        self.save_model()
        return {"train_loss": total / max(batches, 1), "test_loss": self.test_loss(),
                "steps": epoch * math.ceil(len(order) / cfg.batch_size)}

    def run(self, start_epoch: int) -> None:
        run_units(self.exp, PHASE, start_epoch, self.cfg.epochs, self.epoch, unit="epoch", evaluate=False)
