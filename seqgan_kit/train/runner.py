"""`seqgan-kit train`: resolve the config and run directory, build the algorithm's trainer, run its phases."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ..device import choose_precision, resolve_device
from ..distributed import Ranks, world_size_from_env
from ..errors import UserError
from ..runs.rundir import RunDir
from .experiment import Experiment, check_memory, global_batch_sizes
from .mle import MLEPretraining
from .recipe import ExperimentConfig, check_resume_overrides, config_from_run, load_recipe
from .registry import PhaseFn
from .warm_start import apply_init


def build_phases(exp: Experiment) -> list[tuple[str, PhaseFn]]:
    """The shared MLE stage (unless the algorithm skips it) and the algorithm's own phases, with every model
    and optimizer registered on ``exp``."""
    spec = exp.cfg.spec
    phases = [MLEPretraining(exp).phase()] if spec.pretrain else []
    return phases + spec.trainer(exp).phases()


def check_world(cfg: ExperimentConfig, world: int) -> None:
    """UserError, before any work, when the run cannot be split over ``world`` ranks."""
    if world == 1:
        return
    spec = cfg.spec
    if not spec.distributed:
        raise UserError(f"algorithm {cfg.algorithm!r} runs in one process: launch it without torchrun / --nproc")
    for key, size in global_batch_sizes(cfg).items():
        if size < world:
            raise UserError(f"{key} = {size} is a global batch and cannot be split over {world} ranks: use at "
                            f"least {world} or fewer ranks")


def resolve_config(recipe: str | None, overrides: list[str], resume: str | None,
                   run_dir: str | None = None) -> tuple[ExperimentConfig, RunDir]:
    """The validated config and the run directory of ``train``'s arguments (nothing is written)."""
    if resume and recipe:
        raise UserError("give either a RECIPE or --resume RUN_DIR, not both")
    if resume and run_dir is not None:
        raise UserError(f"--run-dir cannot be combined with --resume: a resumed run stays in its own directory "
                        f"({resume})")
    if resume:
        run = RunDir(resume)
        saved = run.read_config()
        cfg = config_from_run(saved, overrides)
        if overrides:
            check_resume_overrides(config_from_run(saved), cfg)
        return cfg, run
    if not recipe:
        raise UserError("train needs a RECIPE (a TOML file) or --resume RUN_DIR")
    cfg = load_recipe(recipe, overrides)
    if run_dir is None:
        run_dir = str(Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    return cfg, RunDir(run_dir)


def check_before_launch(recipe: str | None, overrides: list[str], resume: str | None, world: int,
                        run_dir: str | None = None) -> None:
    """What ``--nproc`` checks before it starts any rank: the recipe (or run directory) and the split."""
    cfg, run = resolve_config(recipe, overrides, resume, run_dir)
    check_memory(cfg)
    check_world(cfg, world)
    if resume or run_dir is not None:
        run.check_writable(fresh=not resume)  # a locked or non-empty run directory: no rank starts


def run_info(cfg: ExperimentConfig, device: torch.device, argv: list[str] | None, world: int = 1) -> dict:
    """What ``run.json`` records: seed, device, precision (and why), ranks, versions, command line."""
    precision, reason = choose_precision(cfg.runtime.precision, device)
    return {
        "seed": cfg.seed,
        "device": str(device),
        "precision": precision,
        "precision_reason": reason,
        "world_size": world,
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

    ``threads`` (the ``--threads`` flag) overrides ``runtime.threads``. Under torchrun (``WORLD_SIZE`` > 1) every
    rank calls this; rank 0 alone checks, creates, locks and writes the run directory (see
    :mod:`seqgan_kit.distributed` for what the ranks share).
    """
    # Everything is read and validated before anything is written: a bad override leaves a run untouched.
    started = time.perf_counter()
    cfg, run = resolve_config(recipe, overrides, resume, run_dir)
    if threads is not None:
        if threads < 0:
            raise UserError(f"--threads must be >= 0 (0 = PyTorch's default), got {threads}")
        cfg.runtime.threads = threads
    check_memory(cfg)
    check_world(cfg, world_size_from_env())
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    ranks, device = Ranks.from_env(resolve_device(cfg.device), cfg.runtime.dist_timeout_s)
    run = RunDir(ranks.broadcast(str(run.path)))  # a default name holds the time: rank 0's is the run's
    try:
        with _quiet_unless(ranks.is_main):
            if ranks.is_main:
                _train_main(cfg, run, device, ranks, overrides, resume, argv)
            else:
                _train_other(cfg, run, device, ranks, overrides, resume, argv)
    finally:
        ranks.close()
    if ranks.is_main:
        from ..runs.tracking import run_summary

        print(run_summary(run.path, run.read_metrics(), time.perf_counter() - started), flush=True)
        print(f"done: {run.path}", flush=True)
    return run.path


@contextlib.contextmanager
def _quiet_unless(main: bool):
    """Ranks other than 0 print nothing (no bars, no summaries). An error leaves the block with the streams
    restored, so the command line still prints it (one line, or a bug's traceback)."""
    if main:
        yield
        return
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        yield


def _train_other(cfg: ExperimentConfig, run: RunDir, device: torch.device, ranks: Ranks, overrides: list[str],
                 resume: str | None, argv: list[str] | None) -> None:
    """A rank other than 0: wait for rank 0 to set up the run directory (or share its error), then train."""
    error = ranks.broadcast(None)
    if error is not None:  # rank 0 printed it: this rank stops with the same exit code, silently
        raise UserError("")
    _run(cfg, run, device, overrides, resume, argv, ranks)


def _train_main(cfg: ExperimentConfig, run: RunDir, device: torch.device, ranks: Ranks, overrides: list[str],
                resume: str | None, argv: list[str] | None) -> None:
    """Rank 0 (the only rank of a one-process run): check, create and lock the run directory, then train."""
    try:
        if not resume and run.path.is_dir() and not run.is_empty():
            raise UserError(f"run directory {run.path} already exists and is not empty (use --resume to continue "
                            f"it)")
        created = False if resume else run.make()
        stale = run.lock()  # a folder we made but lost to a racing fresh run is theirs now: never removed here
    except UserError as exc:
        ranks.broadcast(str(exc))
        raise
    try:
        if stale is not None:
            print(f"stale lock of process {stale} (no longer running) in {run.path}: taken over", flush=True)
        for path in run.remove_stale_temp_files():
            print(f"removed stale temporary file {path}", flush=True)
        if not resume and not run.is_empty():  # another fresh run wrote here between our checks and our lock
            raise UserError(f"run directory {run.path} already exists and is not empty (use --resume to "
                            f"continue it)")
        _run(cfg, run, device, overrides, resume, argv, ranks)
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


def _run(cfg: ExperimentConfig, run: RunDir, device: torch.device, overrides: list[str], resume: str | None,
         argv: list[str] | None, ranks: Ranks) -> None:
    """Write the run's files (rank 0, which holds the run directory's lock) and run its phases (every rank).

    A resume writes nothing until the whole resumed configuration has been checked against the run: the task
    and its tokenizer are rebuilt and checked, every model and optimizer is built, and the checkpoint is
    loaded into them (its data, shapes and phase checked). Only then are ``config.toml`` and ``run.json``
    updated, so a resume that fails leaves every file of the run as it was.
    """
    if ranks.is_main:
        if not resume:
            _write_run_files(cfg, run, device, overrides, resume, argv, ranks.world)
        ranks.broadcast(None)  # the others may start: the run directory exists (and holds its config)
    exp = Experiment(cfg, run, device, build_generator=cfg.spec.uses_generator, ranks=ranks)
    phases = build_phases(exp)
    has_checkpoint = ranks.broadcast(run.checkpoint.exists())
    if not (resume and has_checkpoint):
        with ranks.main_first():  # [init] may copy a tokenizer into the run directory
            apply_init(exp)

    def start() -> None:
        """Everything checked: record the resume, then print where the run goes."""
        if ranks.is_main and resume:
            _write_run_files(cfg, run, device, overrides, resume, argv, ranks.world)
            if not has_checkpoint:
                print(f"{run.path} has no checkpoint yet: starting it from the beginning", flush=True)
                run.truncate_metrics(0)
        if ranks.is_main:
            print(f"run directory: {run.path}  (device {device}, seed {cfg.seed}, threads {torch.get_num_threads()}"
                  f"{f', {ranks.world} ranks' if ranks.world > 1 else ''})", flush=True)
            print(f"precision {exp.precision} ({exp.precision_reason})", flush=True)

    try:
        exp.run(phases, resume=bool(resume) and has_checkpoint, before_start=start)
    finally:
        exp.tracker.close()


def _write_run_files(cfg: ExperimentConfig, run: RunDir, device: torch.device, overrides: list[str],
                     resume: str | None, argv: list[str] | None, world: int) -> None:
    if not resume:
        run.create(cfg.to_dict(), run_info(cfg, device, argv, world))
    elif overrides:
        run.write_config(cfg.to_dict())  # the resumed run uses the overrides from now on
        info = run.read_info()
        info.setdefault("resumes", []).append({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "overrides": overrides})
        run.write_info(info)
