"""Shared test fixtures.

Tests that read ``../shared`` (the oracle weights, the corpora, Texygen's samples) use the ``shared_dir``
fixture: under CI (``CI`` set) a missing folder fails the test; on a user's machine it skips with the reason.
"""

import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# runtime.precision defaults to "auto", which picks bf16 on an AMX CPU or a GPU; the suite's float32 expectations
# (bitwise resumes, tolerances against float32 references) need fp32 there too. Tests of the bf16 path and of the
# auto decision set their precision, flags and environment explicitly (tests/test_precision.py).
os.environ.setdefault("SEQGAN_KIT_AUTO_PRECISION", "fp32")


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
