"""Overrides that shrink the synthetic recipe to a run of a few seconds (shared by several tests)."""

from pathlib import Path

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "synthetic_mle.toml")

TINY = [
    "oracle.vocab_size=40",
    "oracle.emb_dim=8",
    "oracle.hidden_dim=8",
    "oracle.seq_len=6",
    "oracle.n_train=128",
    "oracle.n_test=64",
    "generator.emb_dim=8",
    "generator.hidden_dim=8",
    "eval.n_samples=64",
    "mle.batch_size=16",
    "mle.epochs=4",
    "mle.eval_every=1",
    "mle.checkpoint_every=1",
    "device=cpu",
]


def kill_on_call(monkeypatch, module, name: str, n: int):
    """Make ``module.name`` raise KeyboardInterrupt (a simulated kill) on its ``n``-th call.

    Returns a function that puts the real one back."""
    real = getattr(module, name)
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)
    return lambda: monkeypatch.setattr(module, name, real)
