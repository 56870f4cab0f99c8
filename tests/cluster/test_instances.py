"""Instance catalog, Spot prices and resource scaling."""

from __future__ import annotations

import math

import pytest

from cluster.errors import NotFoundError
from cluster.instances import DEFAULT_CATALOG, GIB, AdvisorBand, InstanceCatalog, ResourceScale, SpotPriceModel


def test_catalog_has_common_types_with_consistent_sizes() -> None:
    for family in ("m5", "m6i", "r5", "c5"):
        for size in ("xlarge", "2xlarge", "4xlarge"):
            assert f"{family}.{size}" in DEFAULT_CATALOG
    x, x2, x4 = (DEFAULT_CATALOG[f"m5.{s}"] for s in ("xlarge", "2xlarge", "4xlarge"))
    assert (x.vcpu, x.memory_gib) == (4, 16)
    assert x2.vcpu == 2 * x.vcpu and x4.memory_gib == 4 * x.memory_gib
    assert x2.on_demand_hourly == pytest.approx(2 * x.on_demand_hourly)
    assert (
        DEFAULT_CATALOG["r5.xlarge"].memory_gib
        > DEFAULT_CATALOG["m5.xlarge"].memory_gib
        > DEFAULT_CATALOG["c5.xlarge"].memory_gib
    )
    assert DEFAULT_CATALOG["m5d.xlarge"].storage_gb > DEFAULT_CATALOG["m5.xlarge"].storage_gb


def test_emr_fee_is_about_a_quarter_of_on_demand() -> None:
    assert DEFAULT_CATALOG["m5.xlarge"].on_demand_hourly == 0.192
    assert DEFAULT_CATALOG["m5.xlarge"].emr_hourly == 0.048
    for itype in DEFAULT_CATALOG.values():
        assert itype.emr_hourly == pytest.approx(0.25 * itype.on_demand_hourly, abs=1e-4)


def test_unknown_type_is_a_not_found_error_and_not_in_the_catalog() -> None:
    with pytest.raises(NotFoundError, match="m9.huge"):
        DEFAULT_CATALOG["m9.huge"]
    assert "m9.huge" not in DEFAULT_CATALOG
    assert DEFAULT_CATALOG.get("m9.huge") is None
    assert len(InstanceCatalog([DEFAULT_CATALOG["m5.xlarge"]])) == 1


def test_advisor_bands_turn_monthly_share_into_hourly_rates() -> None:
    rates = [b.rate_per_hour for b in AdvisorBand]
    assert rates == sorted(rates)
    # Over a 730-hour month the Poisson rate gives back the band midpoint.
    assert 1 - math.exp(-AdvisorBand.UNDER_5.rate_per_hour * 730) == pytest.approx(0.025)
    assert AdvisorBand.OVER_20.monthly_probability == 0.25
    assert AdvisorBand("5-10%") is AdvisorBand.FROM_5_TO_10


def test_spot_price_is_inside_the_band_and_seeded() -> None:
    a = SpotPriceModel(seed=7)
    b = SpotPriceModel(seed=7)
    c = SpotPriceModel(seed=8)
    itype = DEFAULT_CATALOG["m5.xlarge"]
    low, high = itype.spot_discount
    price = a.price("m5.xlarge", 0.0)
    assert itype.on_demand_hourly * (1 - high) <= price <= itype.on_demand_hourly * (1 - low)
    assert price == b.price("m5.xlarge", 0.0)
    assert price != c.price("m5.xlarge", 0.0)
    assert a.price("m5.xlarge", 0.0) == a.price("m5.xlarge", 99_999.0)  # no drift: constant
    assert a.segments("m5.xlarge", 10.0, 20.0) == [(10.0, 20.0, price)]


def test_spot_price_drift_moves_within_band_and_segments_cover_the_interval() -> None:
    model = SpotPriceModel(seed=3, drift=True, step_seconds=60.0, volatility=0.5, origin=100.0)
    itype = DEFAULT_CATALOG["c5.xlarge"]
    low, high = itype.spot_discount
    prices = [model.price("c5.xlarge", 100.0 + 60.0 * k) for k in range(50)]
    assert len(set(prices)) > 5
    assert all(
        itype.on_demand_hourly * (1 - high) - 1e-12 <= p <= itype.on_demand_hourly * (1 - low) + 1e-12 for p in prices
    )
    segments = model.segments("c5.xlarge", 130.0, 400.0)
    assert segments[0][0] == 130.0 and segments[-1][1] == 400.0
    assert [s[0] for s in segments[1:]] == [s[1] for s in segments[:-1]]
    assert [s[0] for s in segments[1:]] == [160.0, 220.0, 280.0, 340.0]
    assert model.cost("c5.xlarge", 130.0, 400.0) == pytest.approx(sum((b - a) * p for a, b, p in segments) / 3600)
    # Same seed, same walk, whatever order prices are asked in.
    other = SpotPriceModel(seed=3, drift=True, step_seconds=60.0, volatility=0.5, origin=100.0)
    assert other.price("c5.xlarge", 100.0 + 60.0 * 49) == prices[49]


def test_resource_scale_keeps_relative_sizes() -> None:
    scale = ResourceScale()
    x, x4, r = DEFAULT_CATALOG["m5.xlarge"], DEFAULT_CATALOG["m5.4xlarge"], DEFAULT_CATALOG["r5.xlarge"]
    assert scale.num_cpus(x) == 1.0
    assert scale.memory_bytes(x) == 1 * GIB
    assert scale.num_cpus(x4) / scale.num_cpus(x) == 4
    assert scale.memory_bytes(r) == 2 * scale.memory_bytes(x)


def test_fitted_scale_shrinks_to_the_host_and_never_grows() -> None:
    types = [DEFAULT_CATALOG["m5.4xlarge"]] * 4  # 16 CPUs, 16 GiB at the default scale
    fitted = ResourceScale().fitted(types, host_cpus=2.0, host_memory_bytes=24 * GIB)
    assert sum(fitted.num_cpus(t) for t in types) == pytest.approx(2.0)
    assert fitted.num_cpus(types[0]) / fitted.memory_bytes(types[0]) == pytest.approx(
        ResourceScale().num_cpus(types[0]) / ResourceScale().memory_bytes(types[0])
    )
    assert ResourceScale().fitted([DEFAULT_CATALOG["m5.xlarge"]], 64.0, 1024 * GIB) == ResourceScale()
