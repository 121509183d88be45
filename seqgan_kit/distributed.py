"""One training process's place among the ranks of a ``torch.distributed`` run (``torchrun`` or ``--nproc``).

A run with one process has no process group at all: every method below is then the identity, so
single-process training is exactly what it was before distribution existed.

With ``W`` ranks (``WORLD_SIZE`` set by ``torchrun``) the semantics are:

- **Global batches.** A recipe's batch sizes are global. Every rank draws the same global batch from the
  same seeded stream and keeps its own contiguous slice (:meth:`Ranks.shard`). A loss that is a mean over
  the global batch is computed on each rank as ``local mean * local count * W / global count``
  (:meth:`Ranks.weight`); DDP averages the gradients over the ranks, so the update equals the one-process
  update up to floating-point reduction order.
- **Gradients** are all-reduced by ``DistributedDataParallel``: :meth:`Ranks.wrap` puts a module behind DDP
  and runs any computation on it (``wrapped(lambda m: ...)``) as that DDP module's forward, so methods other
  than ``forward`` (``log_probs``, ``gumbel_rollout``, ...) are synchronised too.
- **Random streams.** The global torch stream and the run's named streams are shared: every rank makes the
  same shared draws (batch order, generated negatives). Work that must differ between ranks (the rollouts
  of a rank's shard, dropout on its shard) runs inside :meth:`Ranks.local_random`, a per-rank stream that the
  checkpoint stores for every rank.
- **Evaluation** is split: each rank samples and scores its share (its own stream); sums are added over the
  ranks (``Ranks.sums``) and rank 0 gathers what it must score whole (BLEU).
- **Files.** Only rank 0 writes the run directory (config, metrics, curves, checkpoints); the other ranks
  read it after a barrier (:meth:`Ranks.main_first`).
- **Faults.** A collective that fails because another rank died becomes one line (``UserError``); torchrun
  stops the remaining ranks, and ``--resume`` continues from the last complete checkpoint.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from .errors import UserError

T = TypeVar("T")

BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


def _env_int(name: str, default: str | None = None) -> int:
    raw = os.environ.get(name, default)
    if raw is None:
        raise UserError(f"WORLD_SIZE is {os.environ.get('WORLD_SIZE')} but {name} is not set: start several ranks "
                        f"with torchrun or `seqgan-kit train --nproc N` (which set it), or unset WORLD_SIZE")
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"{name} must be a whole number, got {raw!r}") from None


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when not launched by it); UserError when it is not a count, or when
    the rest of what torchrun sets (``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) is missing or inconsistent."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        world = int(raw)
    except ValueError:
        raise UserError(f"WORLD_SIZE must be a whole number, got {raw!r}") from None
    if world < 1:
        raise UserError(f"WORLD_SIZE must be >= 1, got {world}")
    if world > 1:
        rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK", "0")
        if not 0 <= rank < world:
            raise UserError(f"RANK must lie in [0, WORLD_SIZE = {world}), got {rank}")
        if local_rank < 0:
            raise UserError(f"LOCAL_RANK must be >= 0, got {local_rank}")
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name):
                raise UserError(f"WORLD_SIZE is {world} but {name} is not set: start several ranks with torchrun "
                                f"or `seqgan-kit train --nproc N` (which set it), or unset WORLD_SIZE")
        port = _env_int("MASTER_PORT")
        if not 0 < port < 65536:
            raise UserError(f"MASTER_PORT must be a port number in 1..65535, got {port}")
    return world


class _Call(nn.Module):
    """Runs ``fn(module)`` as its forward, so that DDP synchronises the gradients of any method of ``module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, fn: Callable[[nn.Module], Any]) -> Any:
        return fn(self.module)


class Wrapped:
    """``wrapped(fn)`` = ``fn(module)``, through DDP when the run has several ranks."""

    def __init__(self, module: nn.Module, ddp: nn.Module | None, autocast: Callable[[], Any]) -> None:
        self.module = module
        self._ddp = ddp
        self._autocast = autocast

    def __call__(self, fn: Callable[[nn.Module], T]) -> T:
        with self._autocast():
            if self._ddp is None:
                return fn(self.module)
            return self._ddp(fn)


class Ranks:
    """This process's rank among ``world`` ranks (``world == 1``: no process group, all methods trivial)."""

    def __init__(self, rank: int = 0, world: int = 1, device: torch.device | None = None) -> None:
        self.rank, self.world = rank, world
        self.device = device or torch.device("cpu")
        self.precision = "fp32"
        """``fp32`` or ``bf16`` (autocast in :meth:`wrap` and :meth:`autocast`)."""
        self._local_state = torch.Generator().manual_seed(rank).get_state()
        self._local_cuda_state: torch.Tensor | None = None

    # ------------------------------------------------------------------ set-up
    @classmethod
    def from_env(cls, device: torch.device, timeout_s: float) -> tuple[Ranks, torch.device]:
        """Join the process group torchrun describes in the environment (none when ``WORLD_SIZE`` is 1).

        Backend ``nccl`` on CUDA (each rank on ``cuda:LOCAL_RANK``), ``gloo`` on CPU. Returns the ranks and the
        device this rank trains on.
        """
        world = world_size_from_env()
        if world == 1:
            return cls(), device
        rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK", "0")
        if device.type == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise UserError(f"rank {rank} is local rank {local_rank} but this machine has "
                                f"{torch.cuda.device_count()} CUDA device(s): start at most that many ranks per "
                                f"machine (--nproc-per-node)")
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(BACKENDS[device.type], timeout=datetime.timedelta(seconds=timeout_s))
        return cls(rank, world, device), device

    def close(self) -> None:
        """Leave the process group (if this process joined one)."""
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def is_main(self) -> bool:
        """Rank 0: the one rank that writes files and prints."""
        return self.rank == 0

    # ------------------------------------------------------------------ batches and gradients
    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch ``rows [B, ...]`` -> ``[B_r, ...]``.

        ``B_r`` differs by at most one between ranks (``torch.tensor_split``); every rank gets at least one row
        when ``B >= world`` (callers check that up front).
        """
        if self.world == 1:
            return rows
        return torch.tensor_split(rows, self.world)[self.rank]

    def count(self, n: int) -> int:
        """How many of ``n`` items are this rank's (the sizes :meth:`shard` gives)."""
        return n // self.world + (1 if self.rank < n % self.world else 0)

    def weight(self, local: float, total: float) -> float:
        """The factor that turns a mean over this rank's ``local`` items into its share of the mean over the
        ``total`` items of the global batch, once DDP has averaged the gradients over the ranks."""
        return 1.0 if self.world == 1 else local * self.world / total

    def wrap(self, module: nn.Module, find_unused_parameters: bool = False) -> Wrapped:
        """``module`` behind DDP (several ranks) and the run's autocast; call it as ``wrapped(lambda m: ...)``."""
        ddp = None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            ddp = DistributedDataParallel(_Call(module), device_ids=ids,
                                          find_unused_parameters=find_unused_parameters)
        return Wrapped(module, ddp, self.autocast)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast on this device when ``runtime.precision = "bf16"``, else nothing."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ values shared between ranks
    def sum(self, value: float | torch.Tensor) -> float:
        """The sum of a scalar ``value`` over the ranks (``value`` itself with one rank)."""
        return self.sums(value)[0]

    def mean(self, loss: float | torch.Tensor) -> float:
        """The mean over the ranks of a scalar: each rank's share-weighted loss (see :meth:`weight`) averages to
        the loss of the global batch. ``float(loss)`` with one rank."""
        return self.sum(loss.detach() if isinstance(loss, torch.Tensor) else loss) / self.world

    def sums(self, *values: float | torch.Tensor) -> list[float]:
        """The sums of several scalars over the ranks, in one all-reduce."""
        if self.world == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._wire_device)
        return self.sum_tensor(t).tolist()

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """The elementwise sum of ``tensor`` over the ranks (a new tensor; ``tensor`` itself with one rank)."""
        if self.world == 1:
            return tensor
        out = tensor.detach().clone()
        self._collective(dist.all_reduce, out)
        return out

    def gather_rows(self, rows: torch.Tensor, total: int) -> torch.Tensor:
        """The global batch back from every rank's :meth:`shard` of it: ``rows [B_r, ...]`` -> ``[total, ...]`` in
        rank order, differentiable (``rows`` itself with one rank).

        For a loss over the whole batch that every rank computes alike (an MMD, a sum over all rows): the
        gradient a rank's rows receive is the sum of what every rank's copy of them receives, ``W`` times the
        one-process gradient, which DDP's average over the ranks turns back into the one-process update.
        """
        if self.world == 1:
            return rows
        return _GatherRows.apply(rows, self, [total // self.world + (1 if r < total % self.world else 0)
                                              for r in range(self.world)])

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        self._collective(dist.broadcast_object_list, box, src=0)
        return box[0]

    def gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        self._collective(dist.all_gather_object, out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            self._collective(dist.barrier)

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. writing a tokenizer); the others run it after rank 0 is done."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    @property
    def _wire_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def _collective(self, op: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            op(*args, **kwargs)
        except (RuntimeError, dist.DistBackendError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"rank {self.rank}: lost contact with the other ranks ({first[:160]}); the run stops "
                            f"here, and --resume continues from its last complete checkpoint") from None

    # ------------------------------------------------------------------ per-rank randomness
    @contextlib.contextmanager
    def local_random(self) -> Iterator[None]:
        """Draws inside the block come from this rank's own stream, leaving the shared global stream as it was.

        With one rank this is the global stream itself (single-process runs draw exactly as before).
        """
        if self.world == 1:
            yield
            return
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else []):
            torch.set_rng_state(self._local_state)
            if cuda and self._local_cuda_state is not None:
                torch.cuda.set_rng_state(self._local_cuda_state, self.device)
            elif cuda:  # first use: a per-rank CUDA seed drawn from this rank's CPU stream
                torch.cuda.manual_seed(int(torch.randint(0, 1 << 62, (1,)).item()))
            yield
            self._local_state = torch.get_rng_state()
            if cuda:
                self._local_cuda_state = torch.cuda.get_rng_state(self.device)

    def seed_local(self, seed: int) -> None:
        """Start this rank's own stream from ``seed`` (the experiment derives one per rank)."""
        self._local_state = torch.Generator().manual_seed(seed).get_state()
        self._local_cuda_state = None

    def local_states(self) -> dict[str, torch.Tensor]:
        """This rank's own random state (for the checkpoint)."""
        out = {"cpu": self._local_state.clone()}
        if self._local_cuda_state is not None:
            out["cuda"] = self._local_cuda_state.clone()
        return out

    def set_local_states(self, states: dict[str, torch.Tensor]) -> None:
        self._local_state = states["cpu"].clone()
        if "cuda" in states:
            self._local_cuda_state = states["cuda"].clone()


class _GatherRows(torch.autograd.Function):
    """:meth:`Ranks.gather_rows`: an all-gather of row blocks (padded to the largest), whose backward sums every
    rank's gradient of the whole batch (an all-reduce) and keeps this rank's rows."""

    @staticmethod
    def forward(ctx: Any, rows: torch.Tensor, ranks: Ranks, sizes: list[int]) -> torch.Tensor:
        ctx.ranks, ctx.sizes = ranks, sizes
        padded = rows.new_zeros((max(sizes), *rows.shape[1:]))  # [max B_r, ...]
        padded[: len(rows)] = rows
        parts = [torch.empty_like(padded) for _ in sizes]
        ranks._collective(dist.all_gather, parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])  # [total, ...]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        grad = grad.contiguous().clone()  # [total, ...]
        ctx.ranks._collective(dist.all_reduce, grad)
        lo = sum(ctx.sizes[: ctx.ranks.rank])
        return grad[lo : lo + ctx.sizes[ctx.ranks.rank]], None, None
