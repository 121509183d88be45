"""Experiment configuration: plain dataclasses, loaded from one TOML recipe, overridden with ``--set``.

A recipe is a TOML file whose tables mirror :class:`ExperimentConfig`::

    name = "synthetic_mle"
    seed = 0
    [mle]
    epochs = 120

``--set mle.lr=1e-3`` overrides one (dotted) key; the value is parsed as a TOML literal and checked against
the field's type. Unknown keys and wrong types raise :class:`~seqgan_kit.errors.UserError` naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


@dataclass
class OracleConfig:
    """The synthetic task: a target LSTM that generates the "real" data and scores generated samples."""

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


@dataclass
class DataConfig:
    """A real-text corpus (``task = "text"``): where the lines come from and how they become token ids.

    A corpus card (``corpora/<name>.toml``) fills these fields; keys set in the recipe's ``[data]`` table and
    ``--set data.KEY=...`` override the card. Any UTF-8 file with one example per line works without a card.
    """

    card: str = ""
    """Corpus card (TOML) whose keys fill this table; a relative path is resolved against the recipe's folder."""
    name: str = ""
    """Corpus name (recorded with the vocabulary; sampling refuses a checkpoint of another corpus)."""
    language: str = ""
    """Informational: e.g. ``zh-Hans``, ``zh-Hant``, ``en``."""
    dir: str = ""
    """Folder holding the split files. Empty: ``train``/``test`` are paths on their own."""
    train: str = "train.txt"
    test: str = "test.txt"
    """Held-out examples: NLL_test and the BLEU references. Empty: hold out ``test_fraction`` of train."""
    test_fraction: float = 0.1
    """Share of the training lines held out (seeded) when ``test`` is empty."""
    hf_dataset: str = ""
    """A Hugging Face ``datasets`` id or local dataset folder; replaces ``dir``/``train``/``test``."""
    hf_config: str = ""
    hf_train_split: str = "train"
    hf_test_split: str = "test"
    text_field: str = "text"
    """Column holding the text in a ``datasets`` dataset."""
    segment: str = "line"
    """``line``: one example per line. ``sentence``: split each line into sentences (speeches)."""
    lowercase: bool = False
    tokenizer: str = "char"
    """``char`` (Chinese: every non-space character, punctuation included), ``whitespace`` (pre-tokenized
    text) or ``sentencepiece`` (raw text; a model is trained on the training split, kept in the run dir)."""
    spm_vocab_size: int = 4000
    spm_model_type: str = "unigram"
    spm_model: str = ""
    """An existing sentencepiece ``.model`` to use instead of training one."""
    max_len: int = 24
    """Tokens per example before EOS. Longer examples are truncated (counted and reported)."""
    min_freq: int = 1
    """Tokens seen fewer times in the training split map to UNK."""
    max_vocab: int = 0
    """Keep at most this many tokens (most frequent first), besides PAD/BOS/EOS/UNK. 0: no limit."""
    max_train: int = 0
    """Use at most this many training examples (0: all)."""
    eval_tokenizer: str = ""
    """How BLEU splits detokenized text: ``char``, ``whitespace`` or ``treebank``. Empty: the model's tokens."""
    bleu_orders: list[int] = field(default_factory=lambda: [2])


@dataclass
class GeneratorConfig:
    """The LSTM generator (paper: emb 32, hidden 32, every parameter ~ N(0, 0.1))."""

    emb_dim: int = 32
    hidden_dim: int = 32
    init_std: float = 0.1


@dataclass
class MLEConfig:
    """Maximum-likelihood pretraining of the generator, shared by every adversarial variant."""

    epochs: int = 120
    batch_size: int = 64
    lr: float = 0.01
    grad_clip: float = 5.0
    """Global gradient-norm clip."""
    eval_every: int = 5
    """Evaluate (NLL_oracle, NLL_test) every this many epochs, plus before training and after the last."""
    checkpoint_every: int = 5
    """Write a checkpoint every this many epochs (and after the last)."""


@dataclass
class DiscriminatorConfig:
    """The SeqGAN highway CNN discriminator (paper/reference configuration by default)."""

    emb_dim: int = 64
    filter_sizes: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20])
    num_filters: list[int] = field(
        default_factory=lambda: [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]
    )
    dropout_keep: float = 0.75
    """Keep probability in training; no dropout when computing rewards."""
    l2_reg: float = 0.2
    """L2 penalty on the output layer only."""
    lr: float = 1e-4
    batch_size: int = 64


@dataclass
class SeqGANConfig:
    """SeqGAN adversarial training (paper: 50 x 3 D pretraining, then 200 iterations of 1 g-step, 5 x 3 d)."""

    d_pretrain_rounds: int = 50
    d_pretrain_epochs: int = 3
    iterations: int = 200
    g_steps: int = 1
    d_steps: int = 5
    d_epochs: int = 3
    rollout_num: int = 16
    g_lr: float = 0.01
    g_batch_size: int = 64
    grad_clip: float = 5.0
    baseline: bool = False
    """Subtract the batch mean reward (off in the paper)."""
    rollout_ema: float = 0.0
    """0: roll out with the current generator (the paper). >0: an EMA copy with this decay."""
    rollout_max_batch: int = 65536
    """Bound on rows sampled at once in the batched rollout (memory knob)."""
    n_negative: int = 9984
    """Generated negatives per discriminator round. When the training set is larger, each round also draws
    this many random positives from it (balanced classes); otherwise every training sequence is a positive."""
    eval_every: int = 5
    checkpoint_every: int = 5
    generator_init: str = ""
    """A checkpoint (file or run directory) whose generator replaces MLE pretraining (e.g. a finished
    ``synthetic_mle`` run's ``generator_mle.safetensors``). Empty: pretrain here."""
    discriminator_init: str = ""
    """A checkpoint holding discriminator weights; skips discriminator pretraining. Empty: pretrain here."""


@dataclass
class EvalConfig:
    """How NLL_oracle / NLL_test are computed."""

    n_samples: int = 9984
    """Generator samples scored by the oracle for NLL_oracle (the original: 9,984)."""
    batch_size: int = 256
    """Rows per sampling/scoring chunk (small chunks keep the [rows, T, V] logits cache-friendly)."""
    bleu_samples: int = 500
    """Text task: generated samples scored with BLEU against the test split at every evaluation (0: none)."""
    bleu_references: int = 2000
    """Text task: test examples used as BLEU references during training (0: all)."""


@dataclass
class ExperimentConfig:
    """One experiment: what to train, how, and where it runs."""

    name: str = "experiment"
    task: str = "synthetic"
    """``synthetic`` (an oracle LSTM makes the data, ``[oracle]``) or ``text`` (a corpus, ``[data]``)."""
    algorithm: str = "mle"
    """``mle`` (pretraining only) or ``seqgan``."""
    seed: int = 0
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    oracle: OracleConfig = field(default_factory=OracleConfig)
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    mle: MLEConfig = field(default_factory=MLEConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    seqgan: SeqGANConfig = field(default_factory=SeqGANConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def seq_len(self) -> int:
        """Tokens per training sequence: the oracle's length, or a text example's ``max_len`` plus EOS."""
        return self.oracle.seq_len if self.task == "synthetic" else self.data.max_len + 1

    def validate(self) -> None:
        """Cross-field checks; raises UserError naming the key."""
        choices = {
            "task": (self.task, ("synthetic", "text")),
            "algorithm": (self.algorithm, ("mle", "seqgan")),
            "data.tokenizer": (self.data.tokenizer, ("char", "whitespace", "sentencepiece")),
            "data.segment": (self.data.segment, ("line", "sentence")),
            "data.spm_model_type": (self.data.spm_model_type, ("unigram", "bpe", "char", "word")),
            "data.eval_tokenizer": (self.data.eval_tokenizer, ("", "char", "whitespace", "treebank")),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise UserError(f"{key}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        if self.task == "text":
            data = self.data
            for key, value in {"data.max_len": data.max_len, "data.min_freq": data.min_freq,
                               "data.spm_vocab_size": data.spm_vocab_size}.items():
                if value <= 0:
                    raise UserError(f"{key}: must be positive, got {value}")
            if data.max_vocab < 0 or data.max_train < 0:
                raise UserError("data.max_vocab and data.max_train must be >= 0 (0 = no limit)")
            if not 0 < data.test_fraction < 1:
                raise UserError(f"data.test_fraction: must lie in (0, 1), got {data.test_fraction}")
            if not data.bleu_orders or not all(1 <= n <= 5 for n in data.bleu_orders):
                raise UserError(f"data.bleu_orders: expected orders in 1..5, got {data.bleu_orders}")
            if self.eval.bleu_samples == 1 or self.eval.bleu_samples < 0:
                raise UserError("eval.bleu_samples: 0 (off) or at least 2 (Self-BLEU needs two samples), got "
                                f"{self.eval.bleu_samples}")
            if self.eval.bleu_references < 0:
                raise UserError(f"eval.bleu_references: must be >= 0 (0 = all), got {self.eval.bleu_references}")
        positive = {
            "oracle.vocab_size": self.oracle.vocab_size,
            "oracle.seq_len": self.oracle.seq_len,
            "oracle.n_train": self.oracle.n_train,
            "oracle.n_test": self.oracle.n_test,
            "generator.emb_dim": self.generator.emb_dim,
            "generator.hidden_dim": self.generator.hidden_dim,
            "mle.batch_size": self.mle.batch_size,
            "mle.eval_every": self.mle.eval_every,
            "mle.checkpoint_every": self.mle.checkpoint_every,
            "eval.n_samples": self.eval.n_samples,
            "eval.batch_size": self.eval.batch_size,
            "seqgan.rollout_num": self.seqgan.rollout_num,
            "seqgan.n_negative": self.seqgan.n_negative,
            "seqgan.eval_every": self.seqgan.eval_every,
            "seqgan.checkpoint_every": self.seqgan.checkpoint_every,
            "discriminator.batch_size": self.discriminator.batch_size,
        }
        for key, value in positive.items():
            if value <= 0:
                raise UserError(f"{key}: must be positive, got {value}")
        if self.mle.epochs < 0:
            raise UserError(f"mle.epochs: must be >= 0, got {self.mle.epochs}")
        if not 0 <= self.oracle.start_token < self.oracle.vocab_size:
            raise UserError(f"oracle.start_token: must lie in [0, {self.oracle.vocab_size}), got "
                            f"{self.oracle.start_token}")
        d = self.discriminator
        if len(d.filter_sizes) != len(d.num_filters):
            raise UserError(f"discriminator.filter_sizes and discriminator.num_filters differ in length "
                            f"({len(d.filter_sizes)} vs {len(d.num_filters)})")
        if self.algorithm == "seqgan" and max(d.filter_sizes, default=0) > self.seq_len:
            where = "oracle.seq_len" if self.task == "synthetic" else "data.max_len + 1 (EOS)"
            raise UserError(f"discriminator.filter_sizes: filter of width {max(d.filter_sizes)} exceeds the "
                            f"sequence length {self.seq_len} ({where})")
        if not 0 < d.dropout_keep <= 1:
            raise UserError(f"discriminator.dropout_keep: must lie in (0, 1], got {d.dropout_keep}")
        if not 0 <= self.seqgan.rollout_ema < 1:
            raise UserError(f"seqgan.rollout_ema: must lie in [0, 1), got {self.seqgan.rollout_ema}")


# --------------------------------------------------------------------------- loading and overriding
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` (from TOML) against the annotated type ``tp``; return it (ints widened to float)."""
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        (item_tp,) = typing.get_args(tp)[:1]
        if not isinstance(value, list):
            raise UserError(f"{key}: expected a list of {_type_name(item_tp)}, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(key, value, option)
            except UserError:
                continue
        raise UserError(f"{key}: {value!r} does not match {tp}")
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp} for {key}")  # a bug in a dataclass, not user input


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _apply(obj: Any, data: dict[str, Any], prefix: str = "") -> None:
    types_ = _field_types(type(obj))
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in types_:
            known = ", ".join(sorted(types_))
            raise UserError(f"unknown key '{key}' (known keys here: {known})")
        tp = types_[name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise UserError(f"{key}: expected a table [{key}], got {value!r}")
            _apply(getattr(obj, name), value, prefix=f"{key}.")
        else:
            setattr(obj, name, _coerce(key, value, tp))


def parse_override(text: str) -> tuple[str, Any]:
    """``"mle.lr=1e-3"`` -> ``("mle.lr", 0.001)``. The value is a TOML literal; bare text is a string."""
    if "=" not in text:
        raise UserError(f"--set expects key=value, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key:
        raise UserError(f"--set expects key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _field_type_at(cfg: ExperimentConfig, key: str) -> Any:
    """Annotated type of the dotted ``key`` in ``cfg``, or None where the key does not exist."""
    node: Any = cfg
    tp: Any = None
    for part in key.split("."):
        if not dataclasses.is_dataclass(node):
            return None
        tp = _field_types(type(node)).get(part)
        node = getattr(node, part, None)
    return tp


def load_card(path: str | Path) -> dict[str, Any]:
    """A corpus card: a TOML table of :class:`DataConfig` keys (checked here, so errors name the card)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"corpus card not found: {path}")
    try:
        card = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"corpus card {path} is not valid UTF-8 TOML: {exc}") from None
    card.pop("card", None)
    known = _field_types(DataConfig)
    notes = {k for k in card if k not in known and k in CARD_NOTES}
    unknown = sorted(k for k in card if k not in known and k not in notes)
    if unknown:
        raise UserError(f"corpus card {path}: unknown key '{unknown[0]}' (known keys: {', '.join(sorted(known))})")
    return {k: v for k, v in card.items() if k not in notes}


CARD_NOTES = ("description", "source", "license", "split", "notes", "size")
"""Informational card keys (documentation for people), accepted and ignored by the loader."""


def _with_card(data: dict[str, Any], overrides: list[str], base: Path | None) -> dict[str, Any]:
    """Merge the corpus card named by ``data.card`` (or ``--set data.card=...``) under the recipe's keys.

    A card named in the recipe is looked up relative to the recipe's folder (``base``); one given with
    ``--set`` relative to the working directory.
    """
    table = data.get("data", {})
    if not isinstance(table, dict):
        raise UserError(f"data: expected a table [data], got {table!r}")
    card, relative_to = table.get("card", ""), base
    for text in overrides:
        key, value = parse_override(text)
        if key == "data.card":
            card, relative_to = (value if isinstance(value, str) else text.split("=", 1)[1].strip()), None
    if not isinstance(card, str):
        raise UserError(f"data.card: expected a path (a string), got {card!r}")
    if not card:
        return data
    path = Path(card)
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    merged = {**load_card(path), **table}
    merged["card"] = str(path)
    return {**data, "data": merged}


def build_config(data: dict[str, Any], overrides: list[str] | None = None,
                 base: Path | None = None, merge_card: bool = True) -> ExperimentConfig:
    """Build and validate a config from a recipe dict plus ``key=value`` override strings.

    A corpus card named by ``data.card`` fills the ``[data]`` keys the recipe does not set (a relative card
    path is tried as given, then against ``base``, the recipe's folder). ``merge_card=False`` for a run
    directory's resolved config, which already holds the card's values.
    """
    overrides = overrides or []
    if merge_card:
        data = _with_card(data, overrides, base)
    cfg = ExperimentConfig()
    _apply(cfg, data)
    for text in overrides:
        key, value = parse_override(text)
        if _field_type_at(cfg, key) is str and not isinstance(value, str):
            value = text.split("=", 1)[1].strip()  # a path like "1e3" that parsed as TOML stays a string
        _apply(cfg, _nest(key, value))
    cfg.validate()
    return cfg


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a TOML recipe and apply ``--set`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"recipe {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {path} is not valid TOML: {exc}") from None
    return build_config(data, overrides, base=path.parent)


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain data (TOML/JSON serialisable)."""
    return dataclasses.asdict(cfg)
