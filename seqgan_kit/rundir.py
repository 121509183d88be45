"""A run directory: everything one training run writes.

::

    RUN_DIR/
      config.toml             the resolved configuration (recipe + overrides)
      run.json                seed, versions, device, command line, start time
      metrics.jsonl           one JSON object per evaluation: phase, epoch/step, metric values
      curves.png              learning curves (re-drawn after every evaluation)
      checkpoint.safetensors  the latest full training state (resume point)
      generator_mle.safetensors  the generator after MLE pretraining (every adversarial variant starts here)
      generator.safetensors   the generator after adversarial training
      tokenizer/              text runs: vocab.json (and spm.model), reused on resume and for sampling
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
import torch

from .config import ExperimentConfig, build_config, config_to_dict
from .errors import UserError

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"


class RunDir:
    """Paths and writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    def create(self, cfg: ExperimentConfig, device: torch.device, argv: list[str] | None) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_text("config.toml", tomli_w.dumps(config_to_dict(cfg)))
        info = {
            "seed": cfg.seed,
            "device": str(device),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": argv if argv is not None else sys.argv,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(),
        }
        self.write_text("run.json", json.dumps(info, indent=2) + "\n")
        self.metrics_path.touch()

    def read_config(self, overrides: list[str] | None = None) -> ExperimentConfig:
        """The resolved config this run was started with (plus ``overrides``); UserError if not a run dir."""
        path = self.path / "config.toml"
        if not path.is_file():
            raise UserError(f"{self.path} is not a run directory (no config.toml)")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is damaged: {exc}") from None
        return build_config(data, overrides, merge_card=False)  # the card's values are already in it

    def write_text(self, name: str, text: str) -> None:
        """Write a file of the run directory atomically."""
        target = self.path / name
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)

    # ------------------------------------------------------------------ metrics log
    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON object to metrics.jsonl (flushed, so a kill loses at most this line)."""
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def truncate_metrics(self, n_records: int) -> None:
        """Keep the first ``n_records`` records: on resume, drop what was logged after the checkpoint."""
        records = self.read_metrics()[:n_records]
        self.write_text(METRICS, "".join(json.dumps(r) + "\n" for r in records))

    def plot(self) -> None:
        from .plots import plot_curves

        plot_curves(self.read_metrics(), self.path / "curves.png")
