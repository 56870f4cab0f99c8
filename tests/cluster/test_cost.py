"""Billing: per second with a 60-s minimum, Spot prices integrated over time, EMR fee, per-step shares."""

from __future__ import annotations

import pytest

from cluster.cost import MINIMUM_BILLED_SECONDS, NodeUsage, PriceBook, StepWindow, cost_report, node_cost
from cluster.instances import DEFAULT_CATALOG, SpotPriceModel

M5 = DEFAULT_CATALOG["m5.xlarge"]  # $0.192 EC2 + $0.048 EMR per hour


def usage(
    node_id: str, start: float, end: float | None, market: str = "ON_DEMAND", itype: str = "m5.xlarge"
) -> NodeUsage:
    return NodeUsage(node_id, "CORE", itype, market, start, end)  # type: ignore[arg-type]


def test_on_demand_is_billed_per_second_plus_emr_fee() -> None:
    cost = node_cost(usage("a", 0.0, 3600.0), PriceBook(), now=9999.0)
    assert (cost.seconds, cost.billed_seconds) == (3600.0, 3600.0)
    assert cost.ec2_usd == pytest.approx(0.192) and cost.emr_usd == pytest.approx(0.048)
    half = node_cost(usage("b", 0.0, 90.5), PriceBook(), now=9999.0)
    assert half.total_usd == pytest.approx(90.5 * 0.24 / 3600)


@pytest.mark.parametrize("seconds", [0.0, 1.0, 30.0, 59.9])
def test_sixty_second_minimum(seconds: float) -> None:
    cost = node_cost(usage("a", 100.0, 100.0 + seconds), PriceBook(), now=9999.0)
    assert cost.seconds == pytest.approx(seconds)
    assert cost.billed_seconds == MINIMUM_BILLED_SECONDS
    assert cost.total_usd == pytest.approx(60 * 0.24 / 3600)


def test_open_node_is_billed_up_to_now() -> None:
    assert node_cost(usage("a", 0.0, None), PriceBook(), now=120.0).seconds == 120.0


def test_spot_pays_the_spot_price_but_the_same_emr_fee() -> None:
    prices = PriceBook(spot=SpotPriceModel(seed=1))
    od = node_cost(usage("od", 0.0, 3600.0), prices, now=0.0)
    spot = node_cost(usage("sp", 0.0, 3600.0, market="SPOT"), prices, now=0.0)
    assert spot.emr_usd == pytest.approx(od.emr_usd)
    assert spot.ec2_usd == pytest.approx(prices.spot.price("m5.xlarge", 0.0))
    assert spot.ec2_usd < 0.5 * od.ec2_usd


def test_spot_price_drift_is_integrated_over_the_node_life() -> None:
    model = SpotPriceModel(seed=5, drift=True, step_seconds=100.0, volatility=0.5)
    prices = PriceBook(spot=model)
    cost = node_cost(usage("sp", 50.0, 450.0, market="SPOT"), prices, now=0.0)
    expected = (
        50 * model.price("m5.xlarge", 50.0)
        + 100 * model.price("m5.xlarge", 100.0)
        + 100 * model.price("m5.xlarge", 200.0)
        + 100 * model.price("m5.xlarge", 300.0)
        + 50 * model.price("m5.xlarge", 400.0)
    ) / 3600
    assert cost.ec2_usd == pytest.approx(expected)
    assert len({model.price("m5.xlarge", t) for t in (50.0, 150.0, 250.0, 350.0, 450.0)}) > 1
    short = node_cost(usage("sp2", 50.0, 60.0, market="SPOT"), prices, now=0.0)  # minimum spans two prices
    assert short.ec2_usd == pytest.approx(
        (50 * model.price("m5.xlarge", 50.0) + 10 * model.price("m5.xlarge", 100.0)) / 3600
    )


def test_steps_share_node_time_in_proportion_and_the_rest_is_unattributed() -> None:
    nodes = [usage("a", 0.0, 400.0), usage("b", 0.0, 400.0)]
    steps = [StepWindow("s-1", "one", 100.0, 300.0), StepWindow("s-2", "two", 200.0, 400.0)]
    report = cost_report(nodes, steps, PriceBook(), now=1000.0)
    rate = 0.24 / 3600
    # s-1 alone 100..200 (2 nodes x 100 s), shared 200..300 (2 nodes x 100 s / 2); s-2 shared then alone 300..400.
    assert report.step("s-1").node_seconds == pytest.approx(300.0)
    assert report.step("s-2").node_seconds == pytest.approx(300.0)
    assert report.step("s-1").total_usd == pytest.approx(300 * rate)
    assert report.unattributed_usd == pytest.approx(200 * rate)  # 0..100 on both nodes: no step
    assert report.total_usd == pytest.approx(800 * rate)
    assert report.total_usd == pytest.approx(sum(s.total_usd for s in report.steps) + report.unattributed_usd)


def test_minimum_top_up_is_unattributed() -> None:
    report = cost_report([usage("a", 0.0, 10.0)], [StepWindow("s-1", "x", 0.0, 10.0)], PriceBook(), now=10.0)
    assert report.step("s-1").node_seconds == pytest.approx(10.0)
    assert report.unattributed_usd == pytest.approx(50 * 0.24 / 3600)


def test_report_rows_and_text() -> None:
    report = cost_report(
        [usage("i-1", 0.0, 3600.0), usage("i-2", 0.0, 30.0, market="SPOT")],
        [StepWindow("s-1", "etl", 0.0, 1800.0)],
        PriceBook(),
        now=3600.0,
    )
    rows = report.rows()
    assert [r["scope"] for r in rows] == ["node", "node", "step", "unattributed", "cluster"]
    assert rows[1]["billed_seconds"] == 60.0
    assert rows[-1]["total_usd"] == pytest.approx(round(report.total_usd, 6))
    text = report.to_text()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["scope", "id", "detail"] and set(lines[1]) <= {"-", " "}
    assert "etl" in text and "i-2" in text and f"{report.total_usd:.4f}" in lines[-1]
    assert report.node("i-1").ec2_usd == pytest.approx(0.192)
