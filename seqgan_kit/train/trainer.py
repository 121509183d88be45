"""The trainer base: what an algorithm needs of its models, and the one loop that runs a phase's units.

An algorithm is a :class:`Trainer` subclass registered with :func:`~seqgan_kit.train.registry.register_algorithm`::

    @register_algorithm("seqgan", config=SeqGANConfig)
    class SeqGANTrainer(Trainer):
        requires = {"generator": {"language_model", "prefix_states"}, "discriminator": {"prob_real"}}

        def phases(self): return [("pretrain_d", self.pretrain_d), ("adversarial", self.adversarial)]

        def adversarial(self, done: int) -> None:
            run_units(self.exp, "adversarial", done, self.cfg.iterations, self.iteration,
                      eval_every=self.cfg.eval_every, checkpoint_every=self.cfg.checkpoint_every)

- ``requires`` maps each model role the algorithm builds (``generator``, ``discriminator``) to the capabilities
  it needs of that role's kind (:data:`seqgan_kit.models.registry.CAPABILITIES`). The recipe is checked against
  it before any work (:func:`check_requirements`): a kind without a needed capability, or a ``[role]`` table of a
  role the algorithm does not build, is a one-line ConfigError naming both keys.
- :func:`run_units` owns a phase's cadence (the record at unit 0, ``eval_every``, ``checkpoint_every``, the last
  unit, the resume position, the checkpoint of a phase of 0 units), so a trainer says only what one unit does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from tqdm import tqdm

from ..config import ConfigError
from ..models.registry import get_kind, kinds_with
from .registry import AlgorithmSpec, PhaseFn

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recipe import ExperimentConfig

Metrics = dict[str, Any]


class Trainer:
    """Base of every algorithm's trainer: holds the experiment and the algorithm's own table."""

    requires: ClassVar[Mapping[str, frozenset[str] | set[str]]] = {"generator": frozenset({"language_model"})}
    """Model role -> the capabilities the algorithm needs of that role's kind; a role not listed is not built,
    and a recipe table for it is refused."""

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp
        self.cfg = exp.cfg.algo

    def phases(self) -> list[tuple[str, PhaseFn]]:
        """What runs after the shared MLE stage: ``(name, fn)`` pairs, ``fn(units_done)`` runs the rest."""
        raise NotImplementedError

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """Checks across tables beyond :attr:`requires` (default: none)."""

    def build_adversaries(self) -> None:
        """For an algorithm that trains a discriminator beside the generator: ``self.disc``, the Adam optimizers
        ``self.d_optimizer`` (the table's ``d_lr``) and ``self.g_optimizer`` (``g_lr``), and both models as the
        ranks run them (``self.d_model``, ``self.g_model``)."""
        exp = self.exp
        self.disc = exp.build_discriminator()
        self.d_optimizer = exp.adam("discriminator", self.disc.parameters(), self.cfg.d_lr)
        self.g_optimizer = exp.adam("generator_adv", exp.generator.parameters(), self.cfg.g_lr)
        self.d_model = exp.wrap(self.disc)
        self.g_model = exp.wrap(exp.generator)


def check_requirements(spec: AlgorithmSpec, cfg: ExperimentConfig, tables: set[str]) -> None:
    """ConfigError when the recipe's model kinds cannot serve ``spec`` or it has a table ``spec`` never reads.

    ``tables``: the model tables the recipe states (``generator``, ``discriminator``).
    """
    for role in ("generator", "discriminator"):
        needs = spec.requires.get(role)
        if needs is None:
            if role in tables:
                raise ConfigError(role, f"algorithm = {spec.name!r} builds no {role}: remove the [{role}] table "
                                        f"(or choose an algorithm that uses one)")
            continue
        kind = getattr(cfg, role).kind
        missing = sorted(set(needs) - get_kind(role, kind).capabilities)
        if missing:
            able = kinds_with(role, needs)
            raise ConfigError(f"{role}.kind", f"{kind!r} lacks {', '.join(missing)}, which algorithm = "
                                              f"{spec.name!r} needs of its {role} (kinds that have it: "
                                              f"{', '.join(map(repr, able)) or 'none'})")


def run_units(
    exp: Experiment,
    phase: str,
    done: int,
    total: int,
    step: Callable[[int], Metrics],
    *,
    eval_every: int = 1,
    checkpoint_every: int = 1,
    unit: str = "step",
    evaluate: bool = True,
    first: Metrics | None = None,
    report: Callable[[int, Metrics], None] | None = None,
) -> None:
    """Run units ``done + 1 .. total`` of ``phase``: ``step(u)`` does unit ``u`` and returns its metrics.

    - a fresh phase (``done == 0``) with ``first`` given logs the record of unit 0 (``first`` plus the task's
      metrics);
    - after unit ``u``: a record every ``eval_every`` units and after the last (``step``'s metrics, plus the
      task's metrics of the generator when ``evaluate``), a checkpoint every ``checkpoint_every`` units and
      after the last;
    - a phase of 0 units writes its checkpoint at 0, so a resume never repeats it.

    ``report(u, metrics)`` replaces the default record (``exp.log`` of ``metrics`` and the evaluation).
    A resumed phase (``done > 0``) continues after the checkpoint's unit and logs nothing twice.
    """

    def record(u: int, metrics: Metrics) -> None:
        if report is not None:
            report(u, metrics)
        else:
            exp.log(phase, unit, u, total, {**metrics, **(exp.evaluate(phase, u) if evaluate else {})})

    if done == 0 and first is not None:
        record(0, dict(first))
    bar = tqdm(range(done + 1, total + 1), desc=phase, unit=unit, disable=None)
    for u in bar:
        metrics = step(u)
        bar.set_postfix({k: f"{v:.3f}" if isinstance(v, float) else v for k, v in metrics.items()})
        last = u == total
        if u % eval_every == 0 or last:
            record(u, metrics)
        if u % checkpoint_every == 0 or last:
            exp.save(phase, u)
    if done == 0 and total == 0:
        exp.save(phase, 0)
