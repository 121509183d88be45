"""A recipe: one TOML file (plus its ``extends`` parents and ``--set`` overrides) -> :class:`ExperimentConfig`.

Tables and who owns them::

    name, task, algorithm, seed, device     this module
    [runtime]                               RuntimeConfig (this module)
    [oracle]                                tasks/synthetic.py   (task = "synthetic")
    [data]                                  data/data_config.py  (task = "text"; a corpus card fills it)
    [generator] kind = "lstm", ...          the registered generator kind's config (models/)
    [discriminator] kind = "cnn", ...       the registered discriminator kind's config (models/)
                                            (only the roles the algorithm's ``requires`` names; see train/trainer.py)
    [mle]                                   train/mle.py (the shared pretraining stage)
    [init]                                  train/warm_start.py (start from other runs' weights)
    [eval]                                  tasks/evaluation.py
    [<algorithm table>]                     the registered algorithm's own config (e.g. [seqgan])

Every value is checked before any work starts; an error names the dotted key. The algorithm is resolved once
(:attr:`ExperimentConfig.spec`) and the model kinds are checked against what it requires.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import (
    ConfigError,
    apply_overrides,
    coerce,
    field_types,
    from_dict,
    non_negative,
    one_of,
    positive,
    read_recipe,
    to_dict,
)
from ..data.data_config import RENAMED_KEYS as DATA_RENAMED_KEYS
from ..data.data_config import DataConfig, with_card
from ..device import PRECISIONS
from ..models.registry import DEFAULT_KIND, get_kind
from ..packaged import find_recipe
from ..tasks.evaluation import EvalConfig
from ..tasks.synthetic import OracleConfig
from .mle import MLEConfig
from .registry import AlgorithmSpec, algorithms, get_algorithm
from .trainer import check_requirements
from .warm_start import InitConfig

TASKS = ("synthetic", "text")


@dataclass
class RuntimeConfig:
    """How the process runs (``threads`` and ``compile`` change no result on CPU, only speed; ``precision``
    changes results within bfloat16 rounding)."""

    threads: int = 0
    """CPU threads for PyTorch (0: PyTorch's default). 1 is fastest on a busy or 2-core machine."""
    precision: str = "auto"
    """``auto`` (bf16 where the device has fast bfloat16: CUDA with bf16 support, a CPU with AMX ``amx_bf16``;
    fp32 elsewhere, :func:`seqgan_kit.device.choose_precision`; the run prints and records its choice), ``fp32``,
    or ``bf16``: bfloat16 autocast for the training computations of the generator and the discriminator and for
    the rollout (weights, optimizer state, evaluation, NLL metrics, losses, Gumbel noise and sampling
    probabilities stay float32)."""
    compile: bool = False
    """``torch.compile`` each model's ``forward`` (a GPU-ready option; on CPU it needs a C++ compiler)."""
    dist_timeout_s: float = 1800.0
    """Several ranks (torchrun): how long a rank waits for the others at a collective before it gives up with
    one line. Rank 0 scores BLEU alone while the others wait, so keep it above the longest evaluation."""

    report_to: list[str] = field(default_factory=list)
    """Experiment trackers besides ``metrics.jsonl``: ``["tensorboard"]`` writes ``RUN_DIR/tensorboard/`` (the
    optional extra ``seqgan-kit[tensorboard]``)."""

    def validate(self) -> None:
        non_negative(self, "threads")
        one_of(self, "precision", PRECISIONS)
        positive(self, "dist_timeout_s")
        from ..runs.tracking import REPORTERS, check_tensorboard

        for name in self.report_to:
            if name not in REPORTERS:
                raise ConfigError("report_to", f"unknown tracker {name!r} (known: {', '.join(REPORTERS)})")
        if "tensorboard" in self.report_to:
            check_tensorboard()  # a missing extra stops the command before any work


@dataclass
class ExperimentConfig:
    """One experiment: what to train, how, and where it runs (see the module docstring for the tables)."""

    name: str = "experiment"
    task: str = "synthetic"
    """``synthetic`` (an oracle LSTM makes the data, ``[oracle]``) or ``text`` (a corpus, ``[data]``)."""
    algorithm: str = "mle"
    """A registered algorithm (``mle``, ``seqgan``, ...)."""
    seed: int = 0
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    data: DataConfig = field(default_factory=DataConfig)
    generator: Any = None
    """The ``[generator]`` table: the config dataclass of ``generator.kind``."""
    discriminator: Any = None
    """The ``[discriminator]`` table: the config dataclass of ``discriminator.kind``."""
    mle: MLEConfig = field(default_factory=MLEConfig)
    init: InitConfig = field(default_factory=InitConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    algo: Any = None
    """The algorithm's own table (e.g. ``[seqgan]``), or None for an algorithm without one."""
    _spec: AlgorithmSpec | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def spec(self) -> AlgorithmSpec:
        """The registered algorithm ``algorithm`` names (resolved once)."""
        if self._spec is None or self._spec.name != self.algorithm:
            self._spec = get_algorithm(self.algorithm)
        return self._spec

    @property
    def seq_len(self) -> int:
        """Tokens per training sequence: the oracle's length, or a text example's ``data.max_tokens`` plus EOS
        (``data.ending = "pad"``: ``data.max_tokens``, no EOS)."""
        if self.task == "synthetic":
            return self.oracle.seq_len
        return self.data.max_tokens + (1 if self.data.ending == "eos" else 0)

    @property
    def seq_len_source(self) -> str:
        """Which keys set :attr:`seq_len` (for error messages)."""
        if self.task == "synthetic":
            return "oracle.seq_len"
        return "data.max_tokens + 1 (EOS)" if self.data.ending == "eos" else "data.max_tokens (data.ending = 'pad')"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``config.toml``; the algorithm's table appears under its own name."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("algo", "_spec")}
        out = {k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in out.items() if v is not None}
        if self.algo is not None:
            out[self.spec.table] = to_dict(self.algo)
        return out


_SCALARS = ("name", "task", "algorithm", "seed", "device")
_FIXED_TABLES = {"runtime": RuntimeConfig, "oracle": OracleConfig, "data": DataConfig, "mle": MLEConfig,
                 "init": InitConfig, "eval": EvalConfig}
_MODEL_TABLES = ("generator", "discriminator")
MOVED = {
    "discriminator.lr": "the discriminator's learning rate is a training setting of the algorithm now: "
                        "seqgan.d_lr (gumbel.d_lr)",
    "discriminator.batch_size": "the discriminator's batch size is a training setting of the algorithm now: "
                                "seqgan.d_batch_size (gumbel.batch_size serves both networks)",
}
"""Keys that moved to another table: dotted key -> where it went (a recipe that sets one is refused)."""
RENAMED = {"seqgan.rollout_num": "seqgan.num_rollouts",
           **{f"data.{old}": f"data.{new}" for old, new in DATA_RENAMED_KEYS.items()}}
"""Keys with a new name: old dotted key -> new (a recipe that sets the old one is refused, naming the new)."""


def _model_config(role: str, table: Any) -> Any:
    """The config dataclass of the ``[role]`` table's ``kind``."""
    table = {} if table is None else table
    if not isinstance(table, dict):
        raise ConfigError(role, f"expected a table [{role}], got {table!r}")
    for key in table:
        if f"{role}.{key}" in MOVED:
            raise ConfigError(f"{role}.{key}", f"moved: {MOVED[f'{role}.{key}']}")
    try:
        kind_cls = get_kind(role, coerce(f"{role}.kind", table.get("kind", DEFAULT_KIND[role]), str)).config
    except ValueError as exc:
        raise ConfigError(f"{role}.kind", str(exc)) from None
    return from_dict(kind_cls, table, f"{role}.")


def check_name(name: str) -> None:
    """``name`` names the default run directory ``runs/<name>-<time>``: a plain file name, or ConfigError."""
    bad = [ch for ch in ("/", "\\", "\0") if ch in name]
    if not name.strip() or name in (".", "..") or bad or Path(name).is_absolute():
        shown = f" (it holds {bad[0]!r})" if bad else ""
        raise ConfigError("name", f"must be a plain name without folders{shown} (the run goes to runs/<name>-<time>; "
                                  f"use --run-dir to choose another place), got {name!r}")


def build_config(data: dict[str, Any], overrides: list[str] | None = None, base: Path | None = None,
                 merge_card: bool = True) -> ExperimentConfig:
    """Build and validate a config from a recipe dict plus ``key=value`` override strings.

    A corpus card named by ``data.card`` fills the ``[data]`` keys the recipe does not set (``base``: the folder
    relative card paths are tried against). ``merge_card=False`` for a run directory's resolved config, which
    already holds the card's values.
    """
    data = apply_overrides(data, overrides or [])
    types_ = field_types(ExperimentConfig)
    values: dict[str, Any] = {key: coerce(key, data[key], types_[key]) for key in _SCALARS if key in data}
    cfg = ExperimentConfig(**values)
    if cfg.task not in TASKS:
        raise ConfigError("task", f"expected one of {', '.join(map(repr, TASKS))}, got {cfg.task!r}")
    check_name(cfg.name)
    spec = cfg.spec
    for key, value in data.items():
        if key in _SCALARS:
            continue
        if key == "data" and merge_card and isinstance(value, dict):
            try:
                value = with_card(value, base)  # a card's keys are checked below as the recipe's are
            except ConfigError as exc:
                raise exc.under("data") from None
        for old in value if isinstance(value, dict) else ():
            if f"{key}.{old}" in RENAMED:
                raise ConfigError(f"{key}.{old}", f"renamed: set {RENAMED[f'{key}.{old}']} instead")
        if key in _FIXED_TABLES:
            setattr(cfg, key, from_dict(_FIXED_TABLES[key], value, f"{key}."))
        elif key in _MODEL_TABLES:
            setattr(cfg, key, _model_config(key, value))
        elif spec.config is not None and key == spec.table:
            cfg.algo = from_dict(spec.config, value, f"{key}.")
        else:
            tables = sorted([*_SCALARS, *_FIXED_TABLES, *_MODEL_TABLES, *([spec.table] if spec.config else [])])
            owner = next((a.name for a in algorithms().values() if a.config is not None and a.table == key), None)
            hint = f"the table of algorithm {owner!r}, this recipe runs {cfg.algorithm!r}; " if owner else ""
            raise ConfigError(key, f"({hint}known keys: {', '.join(tables)})", unknown=True)
    for role in _MODEL_TABLES:
        if role in spec.requires and getattr(cfg, role) is None:
            setattr(cfg, role, _model_config(role, None))
    check_requirements(spec, cfg, {role for role in _MODEL_TABLES if role in data})
    generator_length_check = getattr(cfg.generator, "check_length", None)  # a kind whose sizes depend on T
    if generator_length_check is not None:
        generator_length_check(cfg.seq_len, cfg.seq_len_source)
    if spec.config is not None and cfg.algo is None:
        cfg.algo = spec.config()
    if cfg.task == "text" and not cfg.data.train and not cfg.data.hf_dataset:
        name = f"corpus {cfg.data.name!r}" if cfg.data.name else "the corpus"
        raise ConfigError("data.train", f"{name} has no training file (a test-only corpus serves for evaluation "
                                        f"only): set data.train to a file with one example per line, or "
                                        f"data.hf_dataset")
    check = getattr(spec.trainer, "check", None)
    if check is not None:
        check(cfg)
    return cfg


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a TOML recipe (a path, or a packaged recipe's name; resolving ``extends``) and apply ``--set``
    overrides."""
    path = find_recipe(path)
    return build_config(read_recipe(path), overrides, base=path.parent)


def config_from_run(data: dict[str, Any], overrides: list[str] | None = None) -> ExperimentConfig:
    """The config of a run directory's ``config.toml`` (already resolved: no card merge) plus overrides.

    A run directory written before the model tables followed the algorithm's ``requires`` holds every model
    table and the discriminator's training settings in ``[discriminator]``: the tables its algorithm does not
    build are dropped and the moved keys go where they belong now, so that such a run still resumes.
    """
    return build_config(_upgraded(data), overrides, merge_card=False)


FIXED_ON_RESUME = ("data", "init")
"""Tables a resumed run cannot change with ``--set``: what the corpus is made into, and where the weights started
(a change of task, algorithm or oracle is refused when the checkpoint is compared with the rebuilt task and
models)."""
DATA_LOCATIONS = ("dir", "train", "test", "card", "hf_dataset", "hf_config", "hf_train_split", "hf_test_split",
                  "spm_model")
"""``[data]`` keys that say where the corpus is, not what it is: a resume may point them to the corpus's new place
(the checkpoint's data fingerprint still has to match)."""


def check_resume_overrides(saved: ExperimentConfig, resumed: ExperimentConfig) -> None:
    """ConfigError when ``--set`` on a resume changes what :data:`FIXED_ON_RESUME` names (the first such key)."""
    before, after = saved.to_dict(), resumed.to_dict()
    for table in FIXED_ON_RESUME:
        old, new = before.get(table) or {}, after.get(table) or {}
        changed = [k for k in sorted({*old, *new}) if old.get(k) != new.get(k) and k not in DATA_LOCATIONS]
        if changed:
            key = changed[0]
            what = "the training data" if table == "data" else "where the weights started (a fresh run's only)"
            raise ConfigError(f"{table}.{key}", f"cannot change on --resume ({old.get(key)!r} -> "
                                                f"{new.get(key)!r}): it sets {what}; start a new run instead")


def _upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a run directory's config) in the current layout (see :func:`config_from_run`)."""
    if not isinstance(data.get("algorithm", "mle"), str):
        return data
    spec = get_algorithm(data.get("algorithm", "mle"))
    data = {k: v for k, v in data.items() if k not in _MODEL_TABLES or k in spec.requires}
    for old, new in RENAMED.items():
        table, key = old.split(".")
        if isinstance(data.get(table), dict) and key in data[table]:
            values = dict(data[table])
            values.setdefault(new.split(".")[1], values.pop(key))
            data[table] = values
    disc = data.get("discriminator")
    if isinstance(disc, dict) and ("lr" in disc or "batch_size" in disc):
        disc = dict(disc)
        lr, batch = disc.pop("lr", None), disc.pop("batch_size", None)
        data["discriminator"] = disc
        if spec.name == "seqgan":
            table = dict(data.get("seqgan", {}))
            if lr is not None:
                table.setdefault("d_lr", lr)
            if batch is not None:
                table.setdefault("d_batch_size", batch)
            data["seqgan"] = table
    return data
