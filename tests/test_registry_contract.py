"""The contract for every new variant: one training module + one recipe (+ its model files), registered.

This file defines a toy generator kind and a toy algorithm, registers them, and drives them through the ordinary
runner and CLI: train, checkpoint, kill and resume, sample. No package file names either of them.
"""

import json
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from seqgan_kit.cli import main
from seqgan_kit.config import positive
from seqgan_kit.models.generator import SequenceGenerator
from seqgan_kit.models.registry import register
from seqgan_kit.runs.plots import curve_names
from seqgan_kit.runs.rundir import RunDir
from seqgan_kit.train.mle import mle_loss
from seqgan_kit.train.registry import register_algorithm

from .tiny import RECIPE, TINY, kill_on_call


# --------------------------------------------------------------------------- a toy generator kind
@dataclass
class BigramConfig:
    kind: str = "toy_bigram"
    dim: int = 8

    def validate(self) -> None:
        positive(self, "dim")


@register("generator", "toy_bigram", BigramConfig)
class BigramGenerator(SequenceGenerator):
    """Next token from the previous one only: embedding -> linear. The state is the previous token ``[B]``."""

    def __init__(self, vocab_size, seq_len, dim=8, start_token=0, eos_token=None, pad_token=0):
        super().__init__(vocab_size, seq_len, start_token, eos_token, pad_token)
        self.dim = dim
        self.embedding = nn.Embedding(vocab_size, dim)
        self.out = nn.Linear(dim, vocab_size)

    @classmethod
    def from_config(cls, cfg, **sizes):
        return cls(dim=cfg.dim, **sizes)

    def config(self):
        return {**self.special_tokens(), "dim": self.dim}

    def forward(self, seqs):
        return self.out(self.embedding(self.inputs(seqs))) + self.logit_bias  # [B, T, V]

    def initial_state(self, batch):
        return torch.full((batch,), self.start_token, dtype=torch.long, device=self.device)

    def advance(self, tokens, state):
        return tokens

    def logits(self, state):
        return self.out(self.embedding(state)) + self.logit_bias  # [B, V]


# --------------------------------------------------------------------------- a toy algorithm
@dataclass
class ToyConfig:
    steps: int = 3
    lr: float = 0.05

    def validate(self) -> None:
        positive(self, "steps", "lr")


@register_algorithm("toy", config=ToyConfig)
class ToyTrainer:
    """After MLE: ``steps`` SGD steps on the likelihood of fresh generator samples, one checkpoint per step."""

    def __init__(self, exp):
        self.exp = exp
        self.cfg = exp.cfg.algo
        self.optimizer = torch.optim.SGD(exp.generator.parameters(), lr=self.cfg.lr)
        exp.optimizers["toy"] = self.optimizer

    def phases(self):
        return [("toy_phase", self.run)]

    def step(self) -> float:
        gen = self.exp.generator
        batch = self.exp.task.train[torch.randperm(len(self.exp.task.train))[:16]]
        loss = mle_loss(gen, batch)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def run(self, start):
        for step in range(start + 1, self.cfg.steps + 1):
            loss = self.step()
            metrics = {"toy_loss": loss, **self.exp.evaluate("toy", step)}
            self.exp.log("toy_phase", "step", step, self.cfg.steps, metrics)
            self.exp.save("toy_phase", step)
        self.exp.save_weights("generator.safetensors", ["generator"])


TOY = [o for o in TINY if not o.startswith("generator.")] + [
    "algorithm=toy", "generator.kind=toy_bigram", "generator.dim=6", "toy.steps=3", "mle.epochs=2"]


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def records(run):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in RunDir(run).read_metrics()]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "run"
    assert main(["train", RECIPE, "--run-dir", str(run), *sets(TOY)]) == 0
    return run


def test_toy_algorithm_and_kind_train_through_the_ordinary_runner(toy_run):
    recs = records(toy_run)
    assert [r["phase"] for r in recs] == ["pretrain_g"] * 3 + ["toy_phase"] * 3
    assert all("toy_loss" in r and "nll_oracle" in r for r in recs[3:])
    assert "toy_loss" in curve_names(RunDir(toy_run).read_metrics())  # a new metric gets its curve
    before = load_file(str(toy_run / "generator_mle.safetensors"))
    after = load_file(str(toy_run / "generator.safetensors"))
    assert set(before) == {"model.generator.embedding.weight", "model.generator.out.weight",
                           "model.generator.out.bias"}
    assert all(not torch.equal(before[k], after[k]) for k in before)  # the toy phase moved every parameter
    config = (toy_run / "config.toml").read_text()
    assert 'kind = "toy_bigram"' in config and "[toy]" in config


def test_checkpoint_rebuilds_the_toy_kind_for_sampling(toy_run, capsys):
    assert main(["sample", str(toy_run), "-n", "4", "--seed", "1"]) == 0
    rows = [list(map(int, line.split())) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and all(len(r) == 6 and all(0 <= t < 40 for t in r) for r in rows)
    assert main(["sample", str(toy_run / "generator_mle.safetensors"), "-n", "2"]) == 0


def test_toy_run_resumes_exactly(toy_run, tmp_path, monkeypatch):
    killed = tmp_path / "killed"
    restore = kill_on_call(monkeypatch, ToyTrainer, "step", 2)
    assert main(["train", RECIPE, "--run-dir", str(killed), *sets(TOY)]) == 130  # interrupted in the toy phase
    restore()
    assert [r["phase"] for r in records(killed)][-1] == "toy_phase"
    assert main(["train", "--resume", str(killed)]) == 0
    assert records(killed) == records(toy_run)


def test_the_toy_table_is_validated_by_its_own_config(tmp_path, capsys):
    assert main(["train", RECIPE, "--run-dir", str(tmp_path / "r"), *sets(TOY + ["toy.steps=0"])]) == 2
    assert "toy.steps: must be positive" in capsys.readouterr().err
    assert main(["train", RECIPE, "--run-dir", str(tmp_path / "r"), *sets(TOY + ["generator.dim=0"])]) == 2
    assert "generator.dim: must be positive" in capsys.readouterr().err
    assert main(["train", RECIPE, "--run-dir", str(tmp_path / "r"), *sets(TINY + ["toy.steps=2"])]) == 2
    assert "the table of algorithm 'toy', this recipe runs 'mle'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_checkpoints_store_the_kind_and_its_arguments(toy_run):
    from seqgan_kit.runs.checkpoint import load_checkpoint

    _, meta = load_checkpoint(toy_run / "checkpoint.safetensors")
    assert meta["modules"]["generator"] == {
        "kind": "toy_bigram",
        "args": {"vocab_size": 40, "seq_len": 6, "start_token": 0, "eos_token": None, "pad_token": 0, "dim": 6},
    }
    assert json.loads(json.dumps(meta["task"]))["kind"] == "synthetic"
