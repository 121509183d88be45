"""`seqgan-kit train`: resolve the config and run directory, build the algorithm's trainer, run its phases."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch

from ..device import resolve_device
from ..errors import UserError
from ..runs.rundir import RunDir
from .experiment import Experiment, check_memory
from .init import apply_init
from .mle import MLEPretraining
from .recipe import ExperimentConfig, config_from_run, load_recipe
from .registry import PhaseFn, get_algorithm


def build_phases(exp: Experiment) -> list[tuple[str, PhaseFn]]:
    """The shared MLE stage (unless the algorithm skips it) and the algorithm's own phases, with every model
    and optimizer registered on ``exp``."""
    spec = get_algorithm(exp.cfg.algorithm)
    phases = [MLEPretraining(exp).phase()] if spec.pretrain else []
    return phases + spec.trainer(exp).phases()


def run_info(cfg: ExperimentConfig, device: torch.device, argv: list[str] | None) -> dict:
    """What ``run.json`` records: seed, device, versions, command line."""
    return {
        "seed": cfg.seed,
        "device": str(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": argv if argv is not None else sys.argv,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
    }


def train(
    recipe: str | None,
    overrides: list[str],
    run_dir: str | None = None,
    resume: str | None = None,
    argv: list[str] | None = None,
    threads: int | None = None,
) -> Path:
    """Train from a recipe into a new run directory, or resume the run directory ``resume``.

    ``threads`` (the ``--threads`` flag) overrides ``runtime.threads``.
    """
    if resume and recipe:
        raise UserError("give either a RECIPE or --resume RUN_DIR, not both")
    # Everything is read and validated before anything is written: a bad override leaves a run untouched.
    if resume:
        run = RunDir(resume)
        cfg = config_from_run(run.read_config(), overrides)
    else:
        if not recipe:
            raise UserError("train needs a RECIPE (a TOML file) or --resume RUN_DIR")
        cfg = load_recipe(recipe, overrides)
        if run_dir is None:
            run_dir = str(Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        run = RunDir(run_dir)
        if run.path.is_dir() and not run.is_empty():
            raise UserError(f"run directory {run.path} already exists and is not empty (use --resume to continue it)")
    if threads is not None:
        if threads < 0:
            raise UserError(f"--threads must be >= 0 (0 = PyTorch's default), got {threads}")
        cfg.runtime.threads = threads
    check_memory(cfg)
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    device = resolve_device(cfg.device)
    created = False if resume else run.make()
    stale = run.lock()  # a folder we made but lost to a racing fresh run is theirs now: never removed here
    try:
        if stale is not None:
            print(f"stale lock of process {stale} (no longer running) in {run.path}: taken over", flush=True)
        for path in run.remove_stale_temp_files():
            print(f"removed stale temporary file {path}", flush=True)
        if not resume and not run.is_empty():  # another fresh run wrote here between our checks and our lock
            raise UserError(f"run directory {run.path} already exists and is not empty (use --resume to "
                            f"continue it)")
        _run(cfg, run, device, overrides, resume, argv)
    except UserError as exc:
        if created and not run.checkpoint.exists():
            run.remove()
            raise UserError(f"{exc} (removed {run.path}: the run stopped before its first checkpoint)") from None
        raise
    except BaseException:
        if created and not run.checkpoint.exists():
            run.remove()
            print(f"seqgan-kit: removed {run.path}: the run stopped before its first checkpoint", file=sys.stderr,
                  flush=True)
        raise
    finally:
        run.unlock()
    print(f"done: {run.path}", flush=True)
    return run.path


def _run(cfg: ExperimentConfig, run: RunDir, device: torch.device, overrides: list[str], resume: str | None,
         argv: list[str] | None) -> None:
    """Write the run's files and run its phases (the caller holds the run directory's lock)."""
    if not resume:
        run.create(cfg.to_dict(), run_info(cfg, device, argv))
    elif overrides:
        run.write_config(cfg.to_dict())  # the resumed run uses the overrides from now on
        info = run.read_info()
        info.setdefault("resumes", []).append({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "overrides": overrides})
        run.write_info(info)
    exp = Experiment(cfg, run, device, build_generator=get_algorithm(cfg.algorithm).uses_generator)
    phases = build_phases(exp)
    has_checkpoint = run.checkpoint.exists()
    if resume and not has_checkpoint:
        print(f"{run.path} has no checkpoint yet: starting it from the beginning", flush=True)
        run.truncate_metrics(0)
    if not (resume and has_checkpoint):
        apply_init(exp)
    print(f"run directory: {run.path}  (device {device}, seed {cfg.seed}, threads {torch.get_num_threads()})",
          flush=True)
    exp.run(phases, resume=bool(resume) and has_checkpoint)
