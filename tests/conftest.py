"""Shared test fixtures.

Tests that read ``../shared`` (the oracle weights, the corpora, Texygen's samples) use the ``shared_dir``
fixture: under CI (``CI`` set) a missing folder fails the test; on a user's machine it skips with the reason.
"""

import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def require_shared(*parts: str) -> Path:
    """Path under ../shared; fail under CI, skip elsewhere, when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"needs {path} (the ../shared folder beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(1234)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield


@pytest.fixture
def one_thread():
    """Tests of thousands of tiny ops: on a shared 2-core box a 2-thread OpenMP pool makes each op wait for a
    descheduled sibling (measured 20x slower). One thread is faster there and changes no result."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
