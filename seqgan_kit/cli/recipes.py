"""``seqgan-kit recipes``: the recipes shipped with the package, one line each; and ``train --print-config``."""

from __future__ import annotations

import argparse
from typing import Any

from ..packaged import packaged_dir, recipe_paths, recipe_summary


def _cmd_recipes(args: argparse.Namespace) -> int:
    paths = recipe_paths()
    if args.name:
        paths = [p for p in paths if args.name in p.stem]
    width = max((len(p.stem) for p in paths), default=4)
    print(f"# {len(paths)} recipes in {packaged_dir('recipes')}; train one with: seqgan-kit train NAME")
    for path in paths:
        print(f"{path.stem:<{width}}  {recipe_summary(path)}")
    return 0


def print_config(recipe: str | None, overrides: list[str], resume: str | None) -> None:
    """Print the resolved configuration (what ``config.toml`` of the run would hold) as TOML; nothing is written."""
    import tomli_w

    from ..train.runner import resolve_config

    cfg, _ = resolve_config(recipe, overrides, resume)
    print(tomli_w.dumps(cfg.to_dict()), end="")


def register(sub: Any) -> None:
    """Add the ``recipes`` command to the CLI's sub-command parsers."""
    p = sub.add_parser("recipes", help="list the recipes shipped with the package (train one by name)")
    p.add_argument("name", nargs="?", default="", help="show only recipes whose name contains this")
    p.set_defaults(func=_cmd_recipes)
