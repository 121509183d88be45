"""The oracle of a synthetic run directory, rebuilt from its ``config.toml`` and checked against its checkpoint.

``seqgan-kit eval nll-oracle --oracle RUN_DIR`` scores samples with exactly the oracle the run trained against,
so the user need not know the recipe's ``[oracle]`` seed or weights file.
"""

from __future__ import annotations

from pathlib import Path

from ..config import from_dict
from ..errors import UserError
from ..models.generator import SequenceGenerator
from ..models.oracle import build_oracle
from ..tasks.synthetic import OracleConfig, _sha256
from .checkpoint import load_checkpoint
from .rundir import RunDir


def load_run_oracle(path: str | Path) -> tuple[SequenceGenerator, OracleConfig]:
    """The oracle of the synthetic run ``path`` (its folder, or a checkpoint inside it) and its config.

    When the run has a checkpoint, the rebuilt oracle's weights hash must equal the one the checkpoint recorded
    (UserError otherwise: e.g. the ``oracle.weights`` file changed since training).
    """
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    raw = RunDir(run_dir).read_config()
    if raw.get("task") != "synthetic":
        raise UserError(f"{run_dir} is a {raw.get('task')} run: only a synthetic run has an oracle")
    cfg = from_dict(OracleConfig, raw.get("oracle", {}), "oracle.")
    oracle = build_oracle(cfg.weights, cfg.seed, cfg.vocab_size, cfg.emb_dim, cfg.hidden_dim, cfg.seq_len,
                          cfg.start_token, cfg.kind)
    checkpoint = path if path.is_file() else run_dir / "checkpoint.safetensors"
    if checkpoint.is_file():
        recorded = (load_checkpoint(checkpoint)[1].get("task") or {}).get("oracle")
        if recorded is not None and recorded != _sha256(*oracle.parameters()):
            raise UserError(f"the oracle rebuilt from {run_dir}/config.toml is not the one {checkpoint.name} was "
                            f"trained against (weights hash differs: was {cfg.weights or 'the config'} changed?)")
    return oracle, cfg
