"""The Ernest model: NNLS fit, predictions, held-out evaluation, experiment design."""

from __future__ import annotations

import math

import pytest

from cluster.predict import ernest
from cluster.predict.ernest import Observation


def _truth(size: float, m: float) -> float:
    return 2.0 + 8.0 * size / m + 0.5 * math.log(m) + 0.1 * m


GRID = [Observation(s, m, _truth(s, m)) for s in (1, 2, 4, 8) for m in (1, 2, 4, 8, 16)]


def test_fit_recovers_the_coefficients_of_noise_free_runs() -> None:
    model = ernest.fit(GRID)
    assert model.theta == pytest.approx((2.0, 8.0, 0.5, 0.1), rel=1e-6, abs=1e-6)
    assert model.predict(100, 64) == pytest.approx(_truth(100, 64), rel=1e-6)
    assert sum(model.terms(3, 5).values()) == pytest.approx(model.predict(3, 5))


def test_coefficients_stay_non_negative_where_least_squares_would_go_negative() -> None:
    # Runtimes that fall with more machines faster than size/m: unconstrained LS would give θ3 < 0.
    runs = [Observation(1, m, 10.0 / m - 0.2 * m + 3) for m in (1, 2, 3, 4, 6)]
    model = ernest.fit(runs)
    assert all(t >= 0 for t in model.theta)
    assert model.theta[3] == 0.0


def test_relative_weighting_favours_short_runs() -> None:
    # One long run that does not follow the form pulls the absolute fit; the relative fit keeps short runs right.
    runs = [Observation(s, 1, 1.0 + s) for s in (1, 2, 3)] + [Observation(100, 1, 60.0)]
    absolute = ernest.fit(runs)
    relative = ernest.fit(runs, weighting="relative")
    short = runs[:3]
    assert max(relative.errors(short)) < max(absolute.errors(short))


def test_evaluate_on_held_out_largest_sizes() -> None:
    train, test = ernest.split_largest(GRID, by="size")
    assert {o.size for o in test} == {8}
    assert {o.size for o in train} == {1, 2, 4}
    result = ernest.evaluate(train, test)
    assert len(result.predictions) == 5
    assert result.mean_error < 1e-6
    assert result.training_error < 1e-6

    noisy_test = [Observation(o.size, o.machines, o.runtime * 1.1) for o in test]
    result = ernest.evaluate(train, noisy_test)
    assert result.mean_error == pytest.approx(1 - 1 / 1.1, rel=1e-4)
    assert result.max_error == pytest.approx(result.mean_error, rel=1e-4)


def test_leave_one_out_and_errors() -> None:
    preds = ernest.leave_one_out(GRID)
    assert len(preds) == len(GRID)
    assert max(p.error for p in preds) < 1e-5
    assert ernest.relative_error(90, 100) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        ernest.relative_error(1, 0)
    with pytest.raises(ValueError):
        ernest.fit([GRID[0]])
    with pytest.raises(ValueError):
        ernest.features(1, 0)


def test_experiment_design_respects_the_budget_and_spans_the_space() -> None:
    candidates = [(s, m) for s in (1, 2, 4, 8) for m in (1, 2, 4, 8)]
    chosen = ernest.design_experiments(candidates, budget=20)
    assert sum(s for s, _ in chosen) <= 20
    assert len(chosen) >= 4  # enough runs to identify four coefficients
    assert len({m for _, m in chosen}) >= 3  # distinct machine counts, or log m and m are confounded
    # A model fitted on the designed runs predicts the rest of the grid.
    train = [Observation(s, m, _truth(s, m)) for s, m in chosen]
    rest = [Observation(s, m, _truth(s, m)) for s, m in candidates if (s, m) not in chosen]
    assert ernest.evaluate(train, rest).mean_error < 1e-4
    assert ernest.design_experiments(candidates, budget=0.5) == []
