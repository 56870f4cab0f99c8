"""cluster.backends (which provider a cluster gets, the claims of the ``ray`` backend) and the control plane's
reaction to a provider that stops answering (a dead Ray head). No Ray here: see test_cluster_on_ray.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cluster.backends import AttachedRayProvider, BackendSpec, build_provider, resolve_backend
from cluster.config import ManagedScalingConfig, parse_config
from cluster.errors import ConfigError, ProviderError
from cluster.events import EntityKind
from cluster.provider import NodeSpec
from cluster.states import ClusterState, ClusterStateChangeReason, NodeState, StepState
from tests.cluster.conftest import Env, config_dict
from tests.cluster.fakes import FakeNodeProvider, FakeStepHandle

GIB = 1024**3


def test_resolve_backend_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    local = parse_config(config_dict())
    ray = parse_config(config_dict(backend="ray", address="10.0.0.5:6379"))
    assert resolve_backend(local) == BackendSpec("local")
    assert resolve_backend(ray) == BackendSpec("ray", "10.0.0.5:6379")
    assert resolve_backend(ray, address="ray://10.0.0.6:6379") == BackendSpec("ray", "10.0.0.6:6379")
    assert resolve_backend(ray, backend="local") == BackendSpec("local")  # the CLI wins; the address goes
    assert resolve_backend(local, address="10.0.0.7:6379") == BackendSpec("ray", "10.0.0.7:6379")
    with pytest.raises(ConfigError, match="address: backend 'ray' needs"):
        resolve_backend(local, backend="ray")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.8:6379")
    assert resolve_backend(local, backend="ray") == BackendSpec("ray", "10.0.0.8:6379")
    with pytest.raises(ConfigError, match="only applies to backend 'ray'"):
        resolve_backend(local, backend="local", address="10.0.0.7:6379")
    with pytest.raises(ConfigError, match="backend: must be one of local, ray"):
        resolve_backend(local, backend="k8s")


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"backend": "yarn"}, "backend", "must be one of local, ray or a plug-in"),
        ({"address": "10.0.0.1:6379"}, "address", "only applies to backend 'ray'"),
        ({"backend": "ray", "address": "10.0.0.1"}, "address", "expected host:port"),
    ],
)
def test_bad_backend_settings_are_rejected(overrides: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config_dict(**overrides))
    assert info.value.field == field and reason in info.value.reason


def test_build_provider_starts_nothing(tmp_path: Path) -> None:
    from cluster.ray_provider import LocalRayProvider

    local = build_provider(BackendSpec("local"), tmp_path / "j-1")
    assert isinstance(local, LocalRayProvider) and local.cluster_dir == (tmp_path / "j-1").resolve()
    local.shutdown()
    attached = build_provider(BackendSpec("ray", "127.0.0.1:9"), tmp_path / "j-2")
    assert isinstance(attached, AttachedRayProvider) and attached.inner is None  # connects at start()
    plugin = build_provider(BackendSpec("tests.cluster.cli_backend:provider"), tmp_path / "j-3")
    assert isinstance(plugin, FakeNodeProvider)
    with pytest.raises(ConfigError, match="cannot load plug-in backend"):
        build_provider(BackendSpec("tests.cluster.nope:provider"), tmp_path / "j-4")


# -- the ray backend's claims, on a stand-in for RayClusterProvider ---------------------------------------------


@dataclass
class RayNodeView:
    node_id: str
    ray_node_id: str
    role: str | None
    resources: dict[str, float]
    is_head: bool = False
    address: str = "10.0.0.1"
    num_cpus: float = 4.0


@dataclass
class ExternalRay:
    """What AttachedRayProvider uses of RayClusterProvider, over a fixed set of nodes."""

    nodes_: list[RayNodeView]
    decommissioned: list[str] = field(default_factory=list)
    steps: list[FakeStepHandle] = field(default_factory=list)
    stopped: bool = False

    def start(self, master: NodeSpec) -> None:
        head = next(n for n in self.nodes_ if n.resources.get("master", 0) >= 2)
        head.node_id = master.node_id  # the GCS alias

    def nodes(self) -> list[RayNodeView]:
        return list(self.nodes_)

    def decommission(self, node_id: str, *, drain: bool = True) -> int:
        self.decommissioned.append(node_id)
        return 2

    def run_step(self, step_id: str, script: str, args: list[str], conf: dict[str, str], log_dir: Path) -> Any:
        handle = FakeStepHandle(step_id, script, args, conf, log_dir)
        self.steps.append(handle)
        return handle

    def shutdown(self) -> None:
        self.stopped = True


def spec(node_id: str, role: str) -> NodeSpec:
    return NodeSpec(node_id, role, "m5.xlarge", "ON_DEMAND", 1.0, GIB)  # type: ignore[arg-type]


def test_attached_provider_claims_nodes_by_role() -> None:
    ray = ExternalRay(
        [
            RayNodeView("r-head", "aa", "MASTER", {"master": 4, "core": 2}, is_head=True),
            RayNodeView("r-w1", "bb", "TASK", {"task": 4}, address="10.0.0.2"),
            RayNodeView("r-w2", "cc", None, {"task": 4, "core": 4}, address="10.0.0.3"),
        ]
    )
    provider = AttachedRayProvider("10.0.0.1:6379", connect=lambda: ray)  # type: ignore[arg-type,return-value]
    with pytest.raises(ProviderError, match="start"):
        provider.alive_nodes()
    provider.start(spec("i-m", "MASTER"))
    provider.add_node(spec("i-c", "CORE"))  # an unclaimed node with `core` beats the (claimed) head
    provider.add_node(spec("i-t1", "TASK"))  # labelled TASK first
    provider.add_node(spec("i-t2", "TASK"))
    assert provider.claims == {"i-m": ("aa", "MASTER"), "i-c": ("cc", "CORE"), "i-t1": ("bb", "TASK"),
                               "i-t2": ("cc", "TASK")}  # fmt: skip
    provider.add_node(spec("i-c2", "CORE"))  # the head offers `core` too: one claim per role per Ray node
    assert provider.claims["i-c2"] == ("aa", "CORE")
    with pytest.raises(ProviderError, match=r"no free TASK node .*ray start --address=10.0.0.1:6379"):
        provider.add_node(spec("i-t3", "TASK"))
    assert provider.alive_nodes() == {"i-m", "i-c", "i-t1", "i-t2", "i-c2"}
    assert provider.decommission("i-t1") == 2 and ray.decommissioned == ["bb"]
    assert provider.decommission("i-unknown") == 0
    provider.remove_node("i-t1", graceful=False)  # releases the claim; the Ray node stays
    provider.add_node(spec("i-t3", "TASK"))
    assert provider.claims["i-t3"] == ("bb", "TASK")
    ray.nodes_.pop(1)  # the external cluster lost a machine
    assert "i-t3" not in provider.alive_nodes()

    handle = provider.run_step("s-1", "x.py", [], {}, Path("/tmp"))
    ray.steps[0].data = {"node_running_tasks:r-w2": 3.0, "node_running_tasks:i-m": 1.0, "pending_tasks": 2.0}
    metrics = handle.metrics()
    # Per-node keys name control-plane ids: r-w2 hosts i-c and i-t2; the head hosts i-m and i-c2, and tasks there
    # run on its core claim (executors never run on a master).
    assert metrics["pending_tasks"] == 2.0 and metrics["node_running_tasks:i-c2"] == 1.0
    assert metrics.get("node_running_tasks:i-c", 0) + metrics.get("node_running_tasks:i-t2", 0) == 3.0
    provider.shutdown()
    assert ray.stopped and provider.claims == {}


# -- a provider that stops answering -----------------------------------------------------------------------------


class DyingProvider(FakeNodeProvider):
    """Liveness fails once ``dead`` is set, as a Ray provider's does when its head (GCS) died."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False

    def alive_nodes(self) -> set[str]:
        if self.dead:
            raise ProviderError("Ray head at 127.0.0.1:1 is not reachable: listing nodes failed")
        return super().alive_nodes()


def test_an_unreachable_provider_fails_running_steps_and_the_cluster(env: Env) -> None:
    env.provider = DyingProvider()
    cluster = env.cluster()
    step_id = cluster.add_step("s", "s.py")
    env.provider.dead = True
    env.tick(cluster, 1)
    env.tick(cluster, 5)  # two failures, but within the grace period: a blip is tolerated
    assert cluster.state == ClusterState.RUNNING and cluster.step(step_id).state == StepState.RUNNING
    env.provider.dead = False
    env.tick(cluster, 1)
    env.provider.dead = True
    env.tick(cluster, 1)
    env.tick(cluster, 20)
    assert cluster.state == ClusterState.TERMINATED_WITH_ERRORS
    assert cluster.state_reason == ClusterStateChangeReason.INSTANCE_FAILURE
    assert "unreachable" in cluster.state_detail and "127.0.0.1:1 is not reachable" in cluster.state_detail
    step = cluster.step(step_id)
    assert step.state == StepState.FAILED and "master node lost" in (step.failure_reason or "")
    master = cluster.list_nodes(role="MASTER")[0]
    assert NodeState.TERMINATED == master.state and "instance failure" in master.machine.history[-1].reason
    assert cluster.timeline(kind=EntityKind.CLUSTER, dst="PROVIDER_UNREACHABLE")


def test_put_and_remove_managed_scaling_policy(env: Env) -> None:
    cluster = env.cluster()
    step_id = cluster.add_step("big", "big.py")
    env.provider.steps[step_id].data = {"pending_tasks": 8}
    env.tick(cluster, 10)
    assert not cluster.timeline(kind=EntityKind.SCALING, dst="SCALE_OUT")  # no policy yet
    with pytest.raises(ConfigError, match="managed_scaling.minimum"):
        cluster.put_managed_scaling_policy(ManagedScalingConfig(minimum=9, maximum=5))
    cluster.put_managed_scaling_policy(
        ManagedScalingConfig(minimum=4, maximum=5, maximum_core=2, scale_out_cooldown_seconds=0)
    )
    env.tick(cluster, 1)
    assert len(cluster.timeline(kind=EntityKind.SCALING, dst="SCALE_OUT")) == 1
    assert cluster.pools["spot-task"].target == 3
    cluster.put_managed_scaling_policy(None)
    assert cluster.config.managed_scaling is None
    assert [e.reason for e in cluster.timeline(kind=EntityKind.SCALING, dst="POLICY")] == [
        "managed scaling policy set",
        "managed scaling policy removed",
    ]
