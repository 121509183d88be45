"""The Python API: train from a recipe and use a run directory from a notebook or a script.

::

    import seqgan_kit

    run = seqgan_kit.train("poetry_mle", overrides={"mle.epochs": 5}, run_dir="runs/poetry_mle")
    run = seqgan_kit.load("runs/poetry_mle")
    run.sample(4, temperature=0.8, seed=0)      # text runs: 4 strings; synthetic runs: LongTensor [4, T]
    run.nll(["床前明月光，疑是地上霜。"])          # mean per-token NLL in nats under the run's generator
    seqgan_kit.load("runs/poetry_maskgan").fill("床前___光，疑是地上霜。")   # MaskGAN runs only

``seqgan_kit.train`` is the same run as ``seqgan-kit train`` (same run directory, same numbers for the same
recipe, overrides and seed); bad input raises :class:`seqgan_kit.errors.UserError` with the CLI's one-line
message. ``seqgan_kit.metrics`` holds the metric functions (``bleu``, ``self_bleu``, ``fed``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import UserError

Overrides = Mapping[str, Any] | Sequence[str] | None
"""``{"mle.epochs": 5, "data.card": "obama_speech"}`` (values as Python/TOML values), or ``["mle.epochs=5"]``
(``--set`` strings)."""


def override_strings(overrides: Overrides) -> list[str]:
    """``--set`` strings of ``overrides`` (a mapping's values written as TOML values)."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise UserError(f"overrides: give a mapping or a list of 'key=value' strings, got the string {overrides!r}")
    if not isinstance(overrides, Mapping):
        return [str(o) for o in overrides]
    import tomli_w

    out = []
    for key, value in overrides.items():
        try:
            text = tomli_w.dumps({"v": value}).split("=", 1)[1].strip()
        except TypeError:
            raise UserError(f"overrides: {key} = {value!r} is not a TOML value") from None
        out.append(f"{key}={text}")
    return out


def train(recipe: str | Path | None = None, overrides: Overrides = None, run_dir: str | Path | None = None, *,
          resume: str | Path | None = None, threads: int | None = None) -> Run:
    """Train ``recipe`` (a packaged recipe's name, e.g. ``"poetry_mle"``, or a TOML path) into ``run_dir``
    (default ``runs/<name>-<time>``), or continue the run directory ``resume``; returns the finished :class:`Run`.

    ``overrides`` are ``--set`` keys (see :data:`Overrides`); ``threads`` sets PyTorch's CPU threads.
    Progress and the end-of-run summary are printed as on the command line.
    """
    from .train.runner import train as run_training

    args = override_strings(overrides)
    shown = ", ".join([repr(str(recipe))] + [f"{k}={v!r}" for k, v in (("overrides", args), ("run_dir", run_dir),
                                                                        ("resume", resume)) if v])
    path = run_training(None if recipe is None else str(recipe), args, run_dir=None if run_dir is None
                        else str(run_dir), resume=None if resume is None else str(resume),
                        argv=[f"seqgan_kit.train({shown})"], threads=threads)
    return Run(path)


def load(run_dir: str | Path) -> Run:
    """The run directory ``run_dir`` (finished or not) as a :class:`Run`; UserError if it is not one."""
    return Run(run_dir)


class Run:
    """One run directory: its configuration and metrics, and (loaded on first use) its generator.

    ``checkpoint`` picks the weights: ``None`` is the run's latest checkpoint; a file name in the run directory
    (``"generator_mle_best.safetensors"``) or a path takes that one.
    """

    def __init__(self, run_dir: str | Path, checkpoint: str | Path | None = None) -> None:
        from .runs.rundir import RunDir

        self.path = Path(run_dir)
        self._run = RunDir(self.path)
        self.config: dict[str, Any] = self._run.read_config()
        """The resolved configuration (``config.toml``) as a dict."""
        self.task: str = str(self.config.get("task", ""))
        self.algorithm: str = str(self.config.get("algorithm", ""))
        self._checkpoint = checkpoint
        self._text = None
        self._generator = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, task={self.task!r}, algorithm={self.algorithm!r})"

    # ------------------------------------------------------------------ records
    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Every evaluation record of ``metrics.jsonl`` (``phase``, ``epoch``/``step``, ``nll_test``, ...)."""
        return self._run.read_metrics()

    def summary(self) -> str:
        """Best and final values of the main metrics and the run's files (as printed at the end of training)."""
        from .runs.tracking import run_summary

        records = self.metrics
        return run_summary(self.path, records, float(records[-1].get("elapsed_s", 0.0)) if records else 0.0)

    # ------------------------------------------------------------------ the model
    def _weights(self) -> Path:
        if self._checkpoint is None:
            return self.path
        given = Path(self._checkpoint)
        return given if given.exists() or given.is_absolute() else self.path / given

    @property
    def text_model(self):
        """The run's :class:`~seqgan_kit.runs.textmodel.TextModel` (text runs only)."""
        if self.task != "text":
            raise UserError(f"{self.path} is a {self.task} run: it has no tokenizer (use token ids)")
        if self._text is None:
            from .runs.textmodel import TextModel

            self._text = TextModel.load(self._weights())
        return self._text

    @property
    def generator(self):
        """The trained generator (a :class:`~seqgan_kit.models.generator.SequenceGenerator`)."""
        if self._generator is None:
            if self.task == "text":
                self._generator = self.text_model.generator
            else:
                from .runs.checkpoint import load_model

                self._generator = load_model(self._weights(), "generator")[0]
        return self._generator

    def sample(self, n: int = 10, temperature: float = 1.0, seed: int = 0) -> list[str] | torch.Tensor:
        """``n`` samples, reproducible from ``seed``: a text run's detokenized strings, or a synthetic run's token
        ids ``[n, T]`` (int64), the same draws as ``seqgan-kit sample RUN -n N --seed S``."""
        if n < 1:
            raise UserError(f"n must be positive, got {n}")
        if not temperature >= 0 or temperature == float("inf"):
            raise UserError(f"temperature must be finite and >= 0, got {temperature}")
        if self.task == "text":
            return self.text_model.sample_text(n, temperature, seed)
        rng = torch.Generator(device=self.generator.device).manual_seed(seed)
        return self.generator.sample(n, temperature=temperature, generator=rng)

    def nll(self, data: Sequence[str] | torch.Tensor | Sequence[Sequence[int]]) -> float:
        """Mean per-token negative log-likelihood (nats) of ``data`` under the generator.

        Text runs: sentences, tokenized and encoded as in training (cut to ``data.max_tokens``; tokens outside the
        vocabulary read as UNK), scored as the run's NLL_test (EOS counted; in ``pad`` text the first PAD).
        Synthetic runs: token ids ``[N, T]`` (a tensor or lists), each id checked against the vocabulary.
        """
        from .metrics.nll import sequence_nll

        gen = self.generator
        if self.task == "text":
            model = self.text_model
            if isinstance(data, str) or not all(isinstance(s, str) for s in data):
                raise UserError("a text run's nll takes a list of sentences (strings)")
            return model.nll_test(model.encode(list(data)))
        ids = torch.as_tensor(data, dtype=torch.long)
        if ids.dim() != 2 or ids.numel() == 0:
            raise UserError(f"token ids must be a non-empty [N, T] array, got shape {tuple(ids.shape)}")
        if int(ids.min()) < 0 or int(ids.max()) >= gen.vocab_size:
            raise UserError(f"token ids must lie in [0, {gen.vocab_size}), got {int(ids.min())}..{int(ids.max())}")
        if ids.shape[1] > gen.seq_len:
            raise UserError(f"sequences of {ids.shape[1]} tokens are longer than the model's seq_len {gen.seq_len}")
        return sequence_nll(gen, ids.to(gen.device))

    def fill(self, template: str, n: int = 1, temperature: float = 1.0, seed: int = 0) -> list[str]:
        """MaskGAN runs: ``n`` fillings of ``template``'s blanks (``___`` one or more tokens, ``___{k}`` exactly
        k), best first by the in-filler's likelihood, as ``seqgan-kit fill`` prints them."""
        from .infill.filling import check_fill_args, fill_best, require_infiller
        from .infill.templates import id_row, parse_template, text_rows

        check_fill_args(n, temperature)
        gen = self.generator
        require_infiller(gen, self.path)
        parsed = parse_template(template)
        if self.task == "text":
            model = self.text_model
            rows, present, _ = text_rows(parsed, model.tokenizer, model.vocab, gen.seq_len, gen.eos_token,
                                         gen.pad_token)
        else:
            rows, present = id_row(parsed, gen.vocab_size, gen.seq_len)
        rng = torch.Generator(device=gen.device).manual_seed(seed)
        filled = fill_best(gen, rows, present, n, temperature, rng)
        if self.task == "text":
            return self.text_model.decode(filled)
        return [" ".join(map(str, r)) for r in filled.tolist()]
