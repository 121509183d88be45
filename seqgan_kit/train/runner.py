"""`seqgan-kit train`: resolve the config and run directory, pick the phases of the algorithm, run them."""

from __future__ import annotations

import time
from pathlib import Path

from ..config import load_recipe
from ..device import resolve_device
from ..errors import UserError
from ..rundir import RunDir
from . import mle
from .experiment import Experiment, Phase


def phases_for(exp: Experiment) -> list[tuple[str, Phase]]:
    """The phases of ``exp.cfg.algorithm``, with their optimizers registered on ``exp``."""
    mle.make_optimizer(exp)
    phases: list[tuple[str, Phase]] = [(mle.PHASE, mle.pretrain_generator)]
    if exp.cfg.algorithm == "seqgan":
        from . import seqgan

        phases += seqgan.setup(exp)
    return phases


def train(
    recipe: str | None,
    overrides: list[str],
    run_dir: str | None = None,
    resume: str | None = None,
    argv: list[str] | None = None,
) -> Path:
    """Train from a recipe into a new run directory, or resume the run directory ``resume``."""
    if resume:
        run = RunDir(resume)
        cfg = run.read_config(overrides)
        if recipe:
            raise UserError("give either a RECIPE or --resume RUN_DIR, not both")
    else:
        if not recipe:
            raise UserError("train needs a RECIPE (a TOML file) or --resume RUN_DIR")
        cfg = load_recipe(recipe, overrides)
        if run_dir is None:
            run_dir = str(Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        run = RunDir(run_dir)
        if run.path.exists() and any(run.path.iterdir()):
            raise UserError(f"run directory {run.path} already exists and is not empty (use --resume to continue it)")
    device = resolve_device(cfg.device)
    if not resume:
        run.create(cfg, device, argv)
    elif overrides:
        run.create(cfg, device, argv)  # record the overrides the resumed run uses
    exp = Experiment(cfg, run, device)
    phases = phases_for(exp)
    has_checkpoint = run.checkpoint.exists()
    if resume and not has_checkpoint:
        print(f"{run.path} has no checkpoint yet: starting it from the beginning", flush=True)
        run.truncate_metrics(0)
    print(f"run directory: {run.path}  (device {device}, seed {cfg.seed})", flush=True)
    exp.run(phases, resume=bool(resume) and has_checkpoint)
    print(f"done: {run.path}", flush=True)
    return run.path
