"""Configuration machinery: plain dataclasses filled from TOML tables, ``extends`` chains and ``--set`` overrides.

Each module owns the dataclass that configures it (``MLEConfig`` in ``train/mle.py``, a model's config beside the
model, ...). This module only knows how to turn a TOML table into such a dataclass:

- :func:`from_dict` checks every key and type (ints widen to float, floats must be finite), then calls the
  dataclass's own ``validate()``. Errors are :class:`ConfigError` naming the dotted key (``mle.lr: ...``).
- :func:`read_recipe` reads a TOML file and resolves ``extends = "parent.toml"`` (relative to the file; a
  missing parent or a cycle is one error line); tables merge key by key, the child winning.
- :func:`apply_overrides` merges ``--set key=value`` strings (the value is a TOML literal; bare text is a
  string, and a string field keeps the text as typed, so ``--set data.dir=1e3`` is the folder ``1e3``).

Validation helpers (:func:`positive`, :func:`non_negative`, :func:`one_of`, :func:`in_range`) are for the
``validate()`` methods: they raise :class:`ConfigError` with the field's name, and :func:`from_dict` prefixes
the table's name.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import UserError

EXTENDS = "extends"
MAX_EXTENDS = 64
"""The longest ``extends`` chain read (a recipe and 63 ancestors): deeper is surely a mistake, and is refused
before it can exhaust the interpreter's stack."""


class ConfigError(UserError):
    """A configuration value is wrong. ``key`` is the dotted key, e.g. ``mle.lr``."""

    def __init__(self, key: str, message: str, unknown: bool = False) -> None:
        self.key = key
        self.message = message
        self.unknown = unknown
        if unknown:
            super().__init__(f"unknown key '{key}' {message}")
        else:
            super().__init__(f"{key}: {message}" if key else message)

    def under(self, prefix: str) -> ConfigError:
        """The same error with its key moved under the table ``prefix``."""
        return ConfigError(f"{prefix}.{self.key}" if self.key else prefix, self.message, self.unknown)


# --------------------------------------------------------------------------- validation helpers
def positive(obj: Any, *names: str) -> None:
    """Each named field of ``obj`` must be > 0."""
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ConfigError(name, f"must be positive, got {value}")


def non_negative(obj: Any, *names: str) -> None:
    """Each named field of ``obj`` must be >= 0."""
    for name in names:
        value = getattr(obj, name)
        if not value >= 0:
            raise ConfigError(name, f"must be >= 0, got {value}")


def in_range(obj: Any, name: str, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
    """``obj.name`` must lie in the interval from ``low`` to ``high`` (open ends as flagged)."""
    value = getattr(obj, name)
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(name, f"must lie in {interval}, got {value}")


SEED_LIMIT = 1 << 63
"""Seeds lie in ``[0, 2^63)``: every random generator the toolkit feeds (torch, numpy, gensim) takes them."""
INT_LIMIT = 1 << 63
"""Config integers are 64-bit signed (TOML's own range), so no size or count overflows a tensor dimension."""


def is_seed_name(name: str) -> bool:
    """Does the key or flag ``name`` (``seed``, ``oracle.seed``, ``data_seed``, ``--seed``) hold a seed?"""
    last = name.rsplit(".", 1)[-1].lstrip("-").replace("-", "_")
    return last == "seed" or last.endswith("_seed")


def check_seed(name: str, value: int) -> None:
    """UserError (naming ``name``) unless ``value`` is a seed in ``[0, 2^63)``."""
    if not 0 <= value < SEED_LIMIT:
        raise UserError(f"{name} must be a whole number in [0, 2^63), got {value}")


def one_of(obj: Any, name: str, choices: Iterable[Any]) -> None:
    """``obj.name`` must be one of ``choices``."""
    choices = tuple(choices)
    value = getattr(obj, name)
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(map(repr, choices))}, got {value!r}")


# --------------------------------------------------------------------------- dict -> dataclass
class Override:
    """A ``--set`` value: the parsed TOML literal and the text as typed (string fields keep the text)."""

    __slots__ = ("value", "raw")

    def __init__(self, value: Any, raw: str) -> None:
        self.value = value
        self.raw = raw

    def __repr__(self) -> str:
        return repr(self.value)


def plain(value: Any) -> Any:
    """A table value without its ``--set`` wrapper (the parsed literal; a string when it parsed as one)."""
    return value.value if isinstance(value, Override) else value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` (from TOML or ``--set``) against the annotated type ``tp``; return the field value."""
    if isinstance(value, Override):
        value = value.raw if tp is str and not isinstance(value.value, str) else value.value
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        (item_tp,) = typing.get_args(tp)[:1]
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list of {_type_name(item_tp)}, got {value!r}")
        return [coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return coerce(key, value, option)
            except ConfigError:
                continue
        raise ConfigError(key, f"{value!r} does not match {tp}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        if is_seed_name(key) and not 0 <= value < SEED_LIMIT:
            raise ConfigError(key, f"a seed must be a whole number in [0, 2^63), got {value}")
        if not -INT_LIMIT <= value < INT_LIMIT:
            raise ConfigError(key, f"must fit in 64 bits (|value| < 2^63), got {value}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(key, f"must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp} for {key}")  # a bug in a dataclass, not user input


def field_types(cls: type) -> dict[str, Any]:
    """``{field name: annotated type}`` of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build the dataclass ``cls`` from the table ``data`` and validate it.

    Nested dataclass fields take nested tables. Unknown keys, wrong types and the class's own ``validate()``
    raise :class:`ConfigError` naming the dotted key (``prefix`` is the table's own key).
    """
    where = prefix.rstrip(".")
    if isinstance(data, Override) or not isinstance(data, dict):
        raise ConfigError(where, f"expected a table [{where}], got {data!r}")
    types_ = field_types(cls)
    values: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in types_:
            known = ", ".join(sorted(types_))
            raise ConfigError(key, f"(known keys here: {known})", unknown=True)
        tp = types_[name]
        values[name] = from_dict(tp, value, f"{key}.") if dataclasses.is_dataclass(tp) else coerce(key, value, tp)
    obj = cls(**values)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as exc:
            raise exc.under(where) if where else exc from None
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain data (TOML/JSON serialisable)."""
    return dataclasses.asdict(obj)


# --------------------------------------------------------------------------- files, extends, overrides
def read_toml(path: str | Path, what: str = "recipe") -> dict[str, Any]:
    """A TOML file as a dict; UserError for a missing, unreadable, non-UTF-8 or invalid file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise UserError(f"{what} {path} nests arrays or tables too deeply to read") from None


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: tables merge key by key, any other value in ``top`` replaces ``base``'s.

    A table whose ``kind`` changes (``[generator] kind = "rmc"`` over an LSTM parent) replaces the parent's
    table instead: the keys of one model kind mean nothing to another.
    """
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            old_kind, new_kind = plain(out[key].get("kind")), plain(value.get("kind"))
            same_kind = old_kind is None or new_kind is None or old_kind == new_kind
            out[key] = merge(out[key], value) if same_kind else dict(value)
        else:
            out[key] = value
    return out


def read_recipe(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe with its ``extends`` chain resolved (parents relative to the file that names them).

    Relative paths inside a table (the corpus card) stay relative to the file that set them: the
    ``data.card`` of a parent is rewritten relative to the child's folder.
    """
    path = Path(path)
    resolved = path.resolve()
    if len(_chain) >= MAX_EXTENDS:
        raise UserError(f"recipe {_chain[0]}: its 'extends' chain is longer than {MAX_EXTENDS} recipes (at "
                        f"{path}): shorten it")
    if resolved in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, resolved))
        raise UserError(f"recipe {path}: 'extends' forms a cycle ({cycle})")
    data = read_toml(path, "recipe" if not _chain else "parent recipe")
    parent = data.pop(EXTENDS, None)
    _anchor_card(data, path.parent)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ConfigError(EXTENDS, f"expected the path of a parent recipe, got {parent!r} (in {path})")
    parent_path = path.parent / parent
    if not parent_path.is_file():
        raise UserError(f"recipe {path}: extends {parent!r}, which is not found ({parent_path})")
    return merge(read_recipe(parent_path, (*_chain, resolved)), data)


def _anchor_card(data: dict[str, Any], folder: Path) -> None:
    """A relative card path in ``[data]`` becomes relative to the working directory (from ``folder``)."""
    table = data.get("data")
    card = table.get("card") if isinstance(table, dict) else None
    if isinstance(card, str) and card.endswith(".toml") and not Path(card).is_absolute():
        candidate = folder / card
        if candidate.is_file():
            table["card"] = str(candidate)


def parse_override(text: str) -> tuple[str, Override]:
    """``"mle.lr=1e-3"`` -> ``("mle.lr", Override(0.001, "1e-3"))``. Bare text parses as a string."""
    if "=" not in text:
        raise UserError(f"--set expects key=value, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"--set expects key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except RecursionError:
        raise UserError(f"--set {key}: the value nests arrays or tables too deeply") from None
    return key, Override(value, raw)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``data`` with each ``key=value`` override merged in (dotted keys address nested tables)."""
    out = data
    for text in overrides:
        key, value = parse_override(text)
        nested: dict[str, Any] = {}
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        out = merge(out, nested)
    return out
