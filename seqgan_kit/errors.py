"""The one exception type users see: a clear, one-line message and exit code 2 (and the error for a missing
optional extra)."""

import importlib
from typing import Any


class UserError(Exception):
    """Bad input from the user (file, recipe key, checkpoint, argument).

    The CLI prints ``seqgan-kit: error: <message>`` on one line and exits with code 2, no traceback.
    """

    exit_code = 2


def require_extra(module: str, extra: str, feature: str) -> Any:
    """Import the optional ``module`` (``datasets``, ``gensim.models``, ``tensorboard``), or raise a one-line
    UserError naming the extra that installs it: ``pip install 'seqgan-kit[EXTRA]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{feature} needs the optional package {module.split('.')[0]!r}: "
                        f"pip install 'seqgan-kit[{extra}]'") from None
