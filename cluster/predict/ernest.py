"""Ernest: runtime as a non-negative combination of four terms of data size and machine count.

Venkataraman et al., "Ernest: Efficient Performance Prediction for Large-Scale Advanced Analytics" (NSDI'16)::

    time(size, m) = θ0 + θ1 · size/m + θ2 · log(m) + θ3 · m,      θ ≥ 0

θ0 is serial work, θ1 the parallel work (data per machine), θ2 tree-shaped communication (aggregation trees),
θ3 work linear in the machines (all-to-one communication, per-machine overheads). The θ are fitted with
non-negative least squares (``scipy.optimize.nnls``) on a few small runs and used to predict larger ones.

``size`` is in any unit (rows, bytes, a scale factor) as long as training and prediction use the same one;
``machines`` is whatever runs tasks in parallel (nodes, executors, or local cores).

:func:`fit` minimises absolute squared error as in the paper; ``weighting="relative"`` divides every row by its
runtime so that the fit minimises squared *relative* error, which keeps short runs from being ignored.
:func:`design_experiments` is the paper's optional optimal experiment design, done greedily: choose training
points that maximise ``log det`` of the information matrix per unit of cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import nnls

FEATURES: tuple[str, ...] = ("constant", "size/machines", "log(machines)", "machines")

Weighting = Literal["absolute", "relative"]


@dataclass(frozen=True)
class Observation:
    """One measured run: ``runtime`` seconds for ``size`` units of data on ``machines`` machines."""

    size: float
    machines: float
    runtime: float
    label: str = ""


def features(size: float, machines: float) -> NDArray[np.float64]:
    """The Ernest feature vector ``[1, size/m, log m, m]``."""
    if machines <= 0:
        raise ValueError("machines must be positive")
    return np.array([1.0, size / machines, math.log(machines), machines], dtype=np.float64)


def relative_error(predicted: float, actual: float) -> float:
    """``|predicted - actual| / actual``."""
    if actual <= 0:
        raise ValueError("actual runtime must be positive")
    return abs(predicted - actual) / actual


@dataclass(frozen=True)
class ErnestModel:
    """A fitted model: ``theta`` in the order of :data:`FEATURES`."""

    theta: tuple[float, float, float, float]
    weighting: Weighting = "absolute"
    training: tuple[Observation, ...] = ()

    def predict(self, size: float, machines: float) -> float:
        return float(features(size, machines) @ np.asarray(self.theta))

    def terms(self, size: float, machines: float) -> dict[str, float]:
        """The four contributions to the predicted time (they add up to :meth:`predict`)."""
        x = features(size, machines)
        return {name: float(v * t) for name, v, t in zip(FEATURES, x, self.theta, strict=True)}

    def errors(self, observations: Iterable[Observation]) -> list[float]:
        """Relative error of the prediction of each observation."""
        return [relative_error(self.predict(o.size, o.machines), o.runtime) for o in observations]

    def describe(self) -> str:
        return " + ".join(f"{t:.4g}·{name}" for name, t in zip(FEATURES, self.theta, strict=True))


def fit(observations: Sequence[Observation], *, weighting: Weighting = "absolute") -> ErnestModel:
    """Fit θ ≥ 0 by non-negative least squares.

    Raises:
        ValueError: Fewer than two observations, or a non-positive runtime or machine count.
    """
    if len(observations) < 2:
        raise ValueError("Ernest needs at least two observations")
    a = np.vstack([features(o.size, o.machines) for o in observations])
    b = np.array([o.runtime for o in observations], dtype=np.float64)
    if np.any(b <= 0):
        raise ValueError("runtimes must be positive")
    if weighting == "relative":
        a = a / b[:, None]
        b = np.ones_like(b)
    # Scale columns to unit norm so that NNLS is not dominated by the largest feature; undo afterwards.
    norms = np.linalg.norm(a, axis=0)
    norms[norms == 0] = 1.0
    theta, _ = nnls(a / norms, b)
    theta = theta / norms
    t0, t1, t2, t3 = (float(v) for v in theta)
    return ErnestModel((t0, t1, t2, t3), weighting, tuple(observations))


@dataclass(frozen=True)
class Prediction:
    """A held-out observation next to its prediction."""

    observation: Observation
    predicted: float

    @property
    def error(self) -> float:
        return relative_error(self.predicted, self.observation.runtime)


@dataclass(frozen=True)
class Evaluation:
    """A model fitted on ``train`` and its predictions of ``test``."""

    model: ErnestModel
    train: tuple[Observation, ...]
    predictions: tuple[Prediction, ...]

    @property
    def mean_error(self) -> float:
        return float(np.mean([p.error for p in self.predictions])) if self.predictions else math.nan

    @property
    def max_error(self) -> float:
        return max((p.error for p in self.predictions), default=math.nan)

    @property
    def training_error(self) -> float:
        """Mean relative error on the training points (how well the form fits at all)."""
        errs = self.model.errors(self.train)
        return float(np.mean(errs)) if errs else math.nan


def evaluate(
    train: Sequence[Observation], test: Sequence[Observation], *, weighting: Weighting = "absolute"
) -> Evaluation:
    """Fit on ``train``, predict ``test``."""
    model = fit(train, weighting=weighting)
    return Evaluation(model, tuple(train), tuple(Prediction(o, model.predict(o.size, o.machines)) for o in test))


def split_largest(
    observations: Sequence[Observation], *, by: Literal["size", "machines"] = "size", count: int = 1
) -> tuple[list[Observation], list[Observation]]:
    """``(train, held out)``: hold out every observation at the ``count`` largest values of ``by``.

    ``size`` holds out the largest data sizes at every machine count (Ernest's "train small, predict large");
    ``machines`` the largest machine counts at every size.
    """

    def key(o: Observation) -> float:
        return o.machines if by == "machines" else o.size

    values = sorted({key(o) for o in observations})
    if len(values) <= count:
        raise ValueError(f"need more than {count} distinct {by} values to hold some out")
    held = set(values[-count:])
    return [o for o in observations if key(o) not in held], [o for o in observations if key(o) in held]


def leave_one_out(observations: Sequence[Observation], *, weighting: Weighting = "absolute") -> list[Prediction]:
    """Predict each observation from a fit on all the others."""
    out = []
    for i, o in enumerate(observations):
        model = fit([x for j, x in enumerate(observations) if j != i], weighting=weighting)
        out.append(Prediction(o, model.predict(o.size, o.machines)))
    return out


def design_experiments(
    candidates: Sequence[tuple[float, float]],
    *,
    budget: float,
    cost: Callable[[float, float], float] | None = None,
    ridge: float = 1e-6,
) -> list[tuple[float, float]]:
    """Choose training runs among ``candidates`` ``(size, machines)`` within ``budget`` (greedy D-optimal).

    Ernest solves a convex relaxation of "maximise the information ``Σ x xᵀ`` of the chosen runs under a cost
    budget"; the greedy version adds, while the budget allows, the candidate with the largest gain in
    ``log det(Σ x xᵀ + ridge·I)`` per unit of cost. Features are scaled per column over the candidates so that
    no term dominates. The default cost of a run is ``size``: machine-seconds spent (machines × time), with time
    roughly proportional to size per machine.
    """
    if not candidates:
        return []
    cost_of = cost or (lambda size, machines: max(size, 1e-9))
    x = np.vstack([features(s, m) for s, m in candidates])
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    x = x / scale
    info = ridge * np.eye(x.shape[1])
    chosen: list[int] = []
    spent = 0.0
    while True:
        _, base = np.linalg.slogdet(info)
        best: tuple[float, int] | None = None
        for i, (s, m) in enumerate(candidates):
            c = cost_of(s, m)
            if i in chosen or spent + c > budget + 1e-12:
                continue
            _, logdet = np.linalg.slogdet(info + np.outer(x[i], x[i]))
            gain = (logdet - base) / c
            if best is None or gain > best[0] + 1e-12:
                best = (gain, i)
        if best is None:
            break
        i = best[1]
        chosen.append(i)
        spent += cost_of(*candidates[i])
        info = info + np.outer(x[i], x[i])
    return [candidates[i] for i in chosen]
