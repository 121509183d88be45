"""What ships with the package besides code: the recipes (``recipes/``) and the corpus cards (``corpora/``).

In a source checkout both are top-level folders next to ``seqgan_kit/``; a wheel or a non-editable ``pip install``
maps them into the package (``seqgan_kit/recipes``, ``seqgan_kit/corpora``, see ``pyproject.toml``). Either way
:func:`packaged_dir` finds them, so ``seqgan-kit train poetry_mle`` and ``data.card = "poetry_quatrain5"`` work
wherever the package is installed.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from .errors import UserError

PACKAGE = Path(__file__).resolve().parent
FOLDERS = ("recipes", "corpora")


def packaged_dir(name: str) -> Path:
    """The folder ``name`` (``recipes`` or ``corpora``): inside the installed package, else the checkout's
    top-level folder. A missing folder is returned as the package path (it then simply holds nothing)."""
    if name not in FOLDERS:
        raise ValueError(f"unknown packaged folder {name!r}")
    for candidate in (PACKAGE / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    return PACKAGE / name


def recipe_paths() -> list[Path]:
    """Every packaged recipe, sorted by name."""
    return sorted(packaged_dir("recipes").glob("*.toml"))


def recipe_summary(path: Path, width: int = 96) -> str:
    """A recipe's one-line description: its leading comment up to the first full stop, cut at ``width``
    characters."""
    lines = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            lines.append(line.lstrip("#").strip())
    except (OSError, UnicodeDecodeError):
        return "(unreadable)"
    text = " ".join(lines)
    ends = [m.start() for m in re.finditer(r"\. ", text) if not text[: m.start()].endswith((" al", "e.g", "i.e"))]
    text = (text[: ends[0] + 1] if ends else text).strip() or "(no description)"
    return text if len(text) <= width else text[: width - 3].rstrip(" ,;:") + "..."


def close_names(name: str, names: list[str], n: int = 5) -> list[str]:
    """Up to ``n`` of ``names`` that look like ``name`` (spelling, or sharing its first word)."""
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
    stem = name.split("_")[0]
    close += [other for other in names if other.startswith(stem + "_") and other not in close]
    return close[:n]


def find_recipe(spec: str | Path) -> Path:
    """The recipe file of ``spec``: an existing path, else a packaged recipe's name (``poetry_mle`` or
    ``poetry_mle.toml``). UserError listing close names (or all of them) when neither exists."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    name = path.name[:-5] if path.name.endswith(".toml") else path.name
    by_name = {p.stem: p for p in recipe_paths()}
    if str(spec) in (name, f"{name}.toml") and name in by_name:
        return by_name[name]
    close = close_names(name, sorted(by_name))
    hint = (f"close names: {', '.join(close)}" if close else
            f"packaged recipes: {', '.join(sorted(by_name)) or '(none)'}")
    raise UserError(f"recipe not found: {spec} (not a file, nor a packaged recipe; {hint}; `seqgan-kit recipes` "
                    f"lists them)")
