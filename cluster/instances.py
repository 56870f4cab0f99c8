"""Instance types the simulator knows: sizes, prices, Spot behaviour, and how they shrink onto one machine.

Prices are us-east-1 Linux On-Demand list prices (approximate, for cost *comparisons*, not invoices). The EMR
fee is approximated as 25% of the On-Demand EC2 price, which matches the published fee of the general-purpose
types closely (m5.xlarge: $0.192 EC2 + $0.048 EMR) and is fixed per type: it does not change with Spot.
``storage_gb`` is the instance store (``d`` types) or EMR's default EBS volume size for the type.

Spot prices follow a seeded model: each type has a discount band (fraction off On-Demand) and a Spot Instance
Advisor interruption-frequency band; optionally the price drifts inside its band over time. The bands are
illustrative defaults, not live AWS data.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cluster.errors import NotFoundError

#: Hours in an average month (Spot Advisor bands are "interruptions in the previous month").
HOURS_PER_MONTH = 730.0
#: Share of the On-Demand price charged as the EMR fee (approximation, see the module docstring).
EMR_FEE_RATIO = 0.25
GIB = 1024**3
MIB = 1024**2


class AdvisorBand(StrEnum):
    """Spot Instance Advisor "frequency of interruption" buckets (share of instances interrupted per month)."""

    UNDER_5 = "<5%"
    FROM_5_TO_10 = "5-10%"
    FROM_10_TO_15 = "10-15%"
    FROM_15_TO_20 = "15-20%"
    OVER_20 = ">20%"

    @property
    def monthly_probability(self) -> float:
        """The band's midpoint (``>20%`` is taken as 25%): chance an instance is interrupted within a month."""
        return _BAND_MIDPOINTS[self]

    @property
    def rate_per_hour(self) -> float:
        """Poisson interruption rate per instance-hour giving :attr:`monthly_probability` over a month."""
        return -math.log(1.0 - self.monthly_probability) / HOURS_PER_MONTH


_BAND_MIDPOINTS = {
    AdvisorBand.UNDER_5: 0.025,
    AdvisorBand.FROM_5_TO_10: 0.075,
    AdvisorBand.FROM_10_TO_15: 0.125,
    AdvisorBand.FROM_15_TO_20: 0.175,
    AdvisorBand.OVER_20: 0.25,
}


@dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type as EMR sees it.

    Attributes:
        name: ``m5.xlarge``.
        vcpu: vCPUs (= YARN vcores on EMR, and the default fleet weight).
        memory_gib: Memory in GiB.
        on_demand_hourly: On-Demand EC2 price, USD per hour.
        emr_hourly: EMR fee, USD per hour (approximate; unchanged by Spot).
        storage_gb: Local/EBS storage available to HDFS, GB.
        spot_discount: ``(low, high)`` fraction off On-Demand the Spot price moves within.
        advisor_band: Spot Advisor interruption-frequency band.
    """

    name: str
    vcpu: int
    memory_gib: float
    on_demand_hourly: float
    emr_hourly: float
    storage_gb: int
    spot_discount: tuple[float, float]
    advisor_band: AdvisorBand

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def size(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def storage_bytes(self) -> int:
        return self.storage_gb * 1000**3


def _family(
    family: str,
    sizes: Mapping[str, tuple[int, float, float, int, AdvisorBand]],
    discount: tuple[float, float],
) -> Iterator[InstanceType]:
    for size, (vcpu, mem, od, storage, band) in sizes.items():
        yield InstanceType(
            name=f"{family}.{size}",
            vcpu=vcpu,
            memory_gib=mem,
            on_demand_hourly=od,
            emr_hourly=round(od * EMR_FEE_RATIO, 4),
            storage_gb=storage,
            spot_discount=discount,
            advisor_band=band,
        )


_B = AdvisorBand
_BUILTIN: tuple[InstanceType, ...] = (
    # General purpose (EBS-only; storage = EMR default EBS).
    *_family(
        "m5",
        {
            "large": (2, 8, 0.096, 32, _B.UNDER_5),
            "xlarge": (4, 16, 0.192, 64, _B.UNDER_5),
            "2xlarge": (8, 32, 0.384, 128, _B.FROM_5_TO_10),
            "4xlarge": (16, 64, 0.768, 256, _B.FROM_5_TO_10),
        },
        (0.55, 0.70),
    ),
    *_family(
        "m6i",
        {
            "large": (2, 8, 0.096, 32, _B.UNDER_5),
            "xlarge": (4, 16, 0.192, 64, _B.UNDER_5),
            "2xlarge": (8, 32, 0.384, 128, _B.UNDER_5),
            "4xlarge": (16, 64, 0.768, 256, _B.FROM_5_TO_10),
        },
        (0.58, 0.72),
    ),
    # General purpose with NVMe instance store.
    *_family(
        "m5d",
        {
            "xlarge": (4, 16, 0.226, 150, _B.FROM_5_TO_10),
            "2xlarge": (8, 32, 0.452, 300, _B.FROM_5_TO_10),
            "4xlarge": (16, 64, 0.904, 600, _B.FROM_10_TO_15),
        },
        (0.60, 0.72),
    ),
    # Memory optimised.
    *_family(
        "r5",
        {
            "large": (2, 16, 0.126, 32, _B.FROM_5_TO_10),
            "xlarge": (4, 32, 0.252, 64, _B.FROM_5_TO_10),
            "2xlarge": (8, 64, 0.504, 128, _B.FROM_10_TO_15),
            "4xlarge": (16, 128, 1.008, 256, _B.FROM_15_TO_20),
        },
        (0.60, 0.75),
    ),
    # Compute optimised.
    *_family(
        "c5",
        {
            "large": (2, 4, 0.085, 32, _B.FROM_10_TO_15),
            "xlarge": (4, 8, 0.17, 64, _B.FROM_10_TO_15),
            "2xlarge": (8, 16, 0.34, 128, _B.FROM_15_TO_20),
            "4xlarge": (16, 32, 0.68, 256, _B.OVER_20),
        },
        (0.55, 0.68),
    ),
)


class InstanceCatalog(Mapping[str, InstanceType]):
    """Instance types by name (a read-only mapping; build another catalog to add types)."""

    def __init__(self, types: Iterable[InstanceType] = _BUILTIN) -> None:
        self._types = {t.name: t for t in types}

    def __getitem__(self, name: str) -> InstanceType:
        try:
            return self._types[name]
        except KeyError:
            raise NotFoundError("instance type", name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def get(self, name: str, default: InstanceType | None = None) -> InstanceType | None:  # type: ignore[override]
        return self._types.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)


#: The built-in catalog.
DEFAULT_CATALOG = InstanceCatalog()


class SpotPriceModel:
    """Seeded Spot prices per instance type, optionally drifting inside the type's discount band.

    Without drift a type's Spot price is constant: On-Demand times ``1 - d`` with ``d`` drawn once (seeded)
    from the type's discount band. With drift the clock is cut into ``step_seconds`` periods starting at
    ``origin``; the position inside the band follows a clamped random walk with standard deviation
    ``volatility`` (as a share of the band) per period. The same seed always gives the same prices.

    Args:
        catalog: Where instance types come from.
        seed: Seed of every draw.
        drift: Whether prices move over time.
        step_seconds: Length of one constant-price period (clock seconds).
        volatility: Random-walk step, as a share of the band width.
        origin: Clock time of the start of period 0 (usually the cluster's start).
    """

    def __init__(
        self,
        catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG,
        *,
        seed: int = 0,
        drift: bool = False,
        step_seconds: float = 300.0,
        volatility: float = 0.2,
        origin: float = 0.0,
    ) -> None:
        if step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        self.catalog = catalog
        self.seed = seed
        self.drift = drift
        self.step_seconds = step_seconds
        self.volatility = volatility
        self.origin = origin
        self._walks: dict[str, list[float]] = {}
        self._rngs: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    def _position(self, name: str, period: int) -> float:
        """Where in the discount band (0 = low discount, 1 = high) the type is in ``period``."""
        with self._lock:
            walk = self._walks.get(name)
            if walk is None:
                rng = random.Random(f"{self.seed}:{name}")
                self._rngs[name] = rng
                walk = self._walks[name] = [rng.random()]
            if not self.drift:
                return walk[0]
            rng = self._rngs[name]
            while len(walk) <= period:
                walk.append(min(1.0, max(0.0, walk[-1] + rng.gauss(0.0, self.volatility))))
            return walk[period]

    def _period(self, t: float) -> int:
        return max(0, math.floor((t - self.origin) / self.step_seconds)) if self.drift else 0

    def discount(self, name: str, t: float) -> float:
        """Fraction off On-Demand of ``name`` at clock time ``t``."""
        low, high = self.catalog[name].spot_discount
        return low + (high - low) * self._position(name, self._period(t))

    def price(self, name: str, t: float) -> float:
        """Spot price of ``name`` at clock time ``t``, USD per hour."""
        return self.catalog[name].on_demand_hourly * (1.0 - self.discount(name, t))

    def segments(self, name: str, start: float, end: float) -> list[tuple[float, float, float]]:
        """``(from, to, usd_per_hour)`` pieces of constant Spot price covering ``[start, end]``."""
        if end <= start:
            return []
        if not self.drift:
            return [(start, end, self.price(name, start))]
        out: list[tuple[float, float, float]] = []
        t = start
        while t < end:
            period = self._period(t)
            boundary = self.origin + (period + 1) * self.step_seconds
            nxt = min(end, boundary)
            out.append((t, nxt, self.price(name, t)))
            t = nxt
        return out

    def cost(self, name: str, start: float, end: float) -> float:
        """USD for running one Spot instance of ``name`` over ``[start, end]`` (EC2 part only)."""
        return sum((b - a) * p for a, b, p in self.segments(name, start, end)) / 3600.0


@dataclass(frozen=True)
class ResourceScale:
    """How an instance type shrinks onto this machine, keeping relative sizes.

    ``m5.xlarge`` (4 vCPU, 16 GiB) at the defaults becomes a node of 1.0 CPU and 1 GiB; an ``m5.2xlarge`` gets
    twice that. Ray accepts fractional CPUs, so small scales still keep the ratios.

    Attributes:
        cpus_per_vcpu: Real (Ray) CPUs per simulated vCPU.
        memory_mib_per_gib: MiB of real memory per simulated GiB.
    """

    cpus_per_vcpu: float = 0.25
    memory_mib_per_gib: float = 64.0

    def num_cpus(self, itype: InstanceType) -> float:
        return itype.vcpu * self.cpus_per_vcpu

    def memory_bytes(self, itype: InstanceType) -> int:
        return int(itype.memory_gib * self.memory_mib_per_gib * MIB)

    def fitted(self, types: Iterable[InstanceType], host_cpus: float, host_memory_bytes: int) -> ResourceScale:
        """This scale, shrunk (never grown) so that nodes of ``types`` together fit the host."""
        listed = list(types)
        cpus = sum(self.num_cpus(t) for t in listed)
        mem = sum(self.memory_bytes(t) for t in listed)
        factor = min(1.0, host_cpus / cpus if cpus else 1.0, host_memory_bytes / mem if mem else 1.0)
        return ResourceScale(self.cpus_per_vcpu * factor, self.memory_mib_per_gib * factor)
