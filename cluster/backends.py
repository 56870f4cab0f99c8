"""Building the :class:`~cluster.provider.NodeProvider` of a cluster from its config (or the CLI's options).

The API, the CLI and notebooks never construct providers themselves; they name a backend:

* ``local`` (default): a multi-node Ray cluster on this machine, one Ray node per EMR node
  (:class:`cluster.ray_provider.LocalRayProvider`), started under the cluster's directory.
* ``ray``: attach to a running Ray cluster at ``address`` (``host:port`` of its head, default ``$RAY_ADDRESS``).
  Its nodes belong to it (its autoscaler adds and removes them), so the control plane *claims* them:
  the master is the node with the ``master`` resource (>= 2 units), and each core or task node of the config
  claims a Ray node offering the ``core`` / ``task`` resource (or labelled ``lakeforge.io/role``), one claim
  per role per Ray node. A node that cannot be claimed fails to start like an EC2 launch failure, with the
  reason. Removing a node releases the claim (the Ray node keeps running); a Spot interruption decommissions
  the Spark executors on it (SIGPWR) but cannot take the machine away.
* ``<module>:<factory>``: a plug-in; ``factory(cluster_dir=..., config=..., address=...)`` returns a provider
  (the CLI tests use one that runs step scripts as plain processes).

Building a provider starts nothing: the local backend starts Ray when the cluster starts its master, the
``ray`` backend connects then too, so an unreachable head shows up as a failed cluster with the reason
(TERMINATED_WITH_ERRORS), not as an exception before the cluster exists.

This module never imports ``ray``: :mod:`cluster.ray_provider` is imported only when a Ray backend is built.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.config import BACKEND_NAMES, ClusterConfig
from cluster.errors import ConfigError, ProviderError
from cluster.provider import METRIC_NODE_RUNNING_TASKS_PREFIX, METRIC_NODE_SHUFFLE_BYTES_PREFIX, NodeProvider, NodeSpec
from cluster.provider import StepHandle as StepHandleProtocol

if TYPE_CHECKING:
    from cluster.ray_provider import RayClusterProvider, RayNode

log = logging.getLogger(__name__)

#: Seconds every GCS call of an attached Ray cluster may take (a dead head is an error after this, not a hang).
DEFAULT_ATTACH_TIMEOUT = 15.0
#: Seconds the local backend waits for a Ray node to come up (a loaded 2-core machine needs a lot).
DEFAULT_LOCAL_TIMEOUT = 60.0


@dataclass(frozen=True)
class BackendSpec:
    """Which backend runs a cluster, and how to reach it.

    Attributes:
        name: ``local``, ``ray`` or a plug-in ``<module>:<factory>``.
        address: The Ray head (``ray`` only; ``None`` for the others).
        timeout: Seconds a Ray call or node start may take (``None``: the backend's default).
    """

    name: str = "local"
    address: str | None = None
    timeout: float | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.address})" if self.address else self.name


def resolve_backend(
    config: ClusterConfig | None = None,
    backend: str | None = None,
    address: str | None = None,
    *,
    timeout: float | None = None,
) -> BackendSpec:
    """The backend of a cluster: the explicit arguments (CLI options) win over the config, which wins over the
    defaults (``local``; for ``ray``, ``$RAY_ADDRESS``).

    Raises:
        ConfigError: Unknown backend, an address for the local backend, or ``ray`` without any address.
    """
    name = backend or (config.backend if config is not None else "local")
    if backend is None and address is not None and name == "local":
        name = "ray"  # an address alone means "attach"
    if name not in BACKEND_NAMES and ":" not in name:
        raise ConfigError("backend", f"must be one of {', '.join(BACKEND_NAMES)} or '<module>:<factory>', got {name!r}")
    if backend is not None and config is not None and backend != config.backend:
        # The CLI switched backends: the config's address belonged to the config's backend.
        addr = address
    else:
        addr = address or (config.address if config is not None else None)
    if name == "local":
        if address is not None:
            raise ConfigError("address", "only applies to backend 'ray' (the local backend starts its own Ray)")
        addr = None
    elif name == "ray":
        addr = addr or os.environ.get("RAY_ADDRESS") or None
        if not addr:
            raise ConfigError(
                "address", "backend 'ray' needs the Ray head's address (host:port): --address, config or $RAY_ADDRESS"
            )
        addr = addr.removeprefix("ray://")
    return BackendSpec(name, addr, timeout)


def build_provider(spec: BackendSpec, cluster_dir: Path, config: ClusterConfig | None = None) -> NodeProvider:
    """A provider for one cluster whose directory is ``cluster_dir``. Starts nothing (see the module docstring).

    Raises:
        ConfigError: A plug-in that cannot be imported or is not callable.
    """
    if spec.name == "local":
        from cluster.ray_provider import LocalRayProvider

        return LocalRayProvider(cluster_dir, timeout=spec.timeout or DEFAULT_LOCAL_TIMEOUT)
    if spec.name == "ray":
        assert spec.address is not None
        return AttachedRayProvider(spec.address, timeout=spec.timeout or DEFAULT_ATTACH_TIMEOUT)
    module_name, _, attr = spec.name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError("backend", f"cannot load plug-in backend {spec.name!r}: {exc}") from exc
    if not callable(factory):
        raise ConfigError("backend", f"plug-in backend {spec.name!r} is not callable")
    provider: NodeProvider = factory(cluster_dir=cluster_dir, config=config, address=spec.address)
    return provider


# --------------------------------------------------------------------------------------------------------------
# Backend "ray": claim the nodes of a running Ray cluster


class _TranslatedStep:
    """A step handle whose per-node metric keys name control-plane node ids instead of Ray node names."""

    def __init__(self, inner: StepHandleProtocol, translate: Callable[[str], str]) -> None:
        self.inner = inner
        self._translate = translate

    def poll(self) -> int | None:
        return self.inner.poll()

    def cancel(self, force: bool) -> None:
        self.inner.cancel(force)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in self.inner.metrics().items():
            for prefix in (METRIC_NODE_RUNNING_TASKS_PREFIX, METRIC_NODE_SHUFFLE_BYTES_PREFIX):
                if key.startswith(prefix):
                    key = prefix + self._translate(key.removeprefix(prefix))
                    break
            out[key] = out.get(key, 0.0) + value
        return out

    def __getattr__(self, name: str) -> Any:  # log_dir, status(), executors(), ... of the Ray step
        return getattr(self.inner, name)


class AttachedRayProvider:
    """A :class:`~cluster.provider.NodeProvider` over an existing Ray cluster: claims its nodes by role.

    Args:
        address: The Ray head, ``host:port``.
        timeout: Seconds each GCS call may take.
        connect: Makes the underlying :class:`~cluster.ray_provider.RayClusterProvider` (tests inject one).
    """

    backend = "ray"

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_ATTACH_TIMEOUT,
        connect: Callable[[], RayClusterProvider] | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._connect = connect
        self.inner: RayClusterProvider | None = None
        #: control-plane node id -> (Ray node id, role)
        self.claims: dict[str, tuple[str, str]] = {}
        self._lock = threading.RLock()

    def _ray(self) -> RayClusterProvider:
        if self.inner is None:
            raise ProviderError(f"not attached to the Ray cluster at {self.address} yet (start() first)")
        return self.inner

    def _name_map(self, nodes: list[RayNode]) -> dict[str, str]:
        """Ray node name (as the GCS reports it) -> control-plane id; a worker claim wins over the master's."""
        out: dict[str, str] = {}
        by_ray = {n.ray_node_id: n.node_id for n in nodes}
        for control, (ray_id, role) in self.claims.items():
            name = by_ray.get(ray_id)
            if name is not None and (name not in out or role != "MASTER"):
                out[name] = control
        return out

    def start(self, master: NodeSpec) -> None:
        from cluster.ray_provider import RayClusterProvider

        with self._lock:
            if self.inner is None:
                self.inner = (
                    self._connect() if self._connect else RayClusterProvider(self.address, timeout=self.timeout)
                )
            self.inner.start(master)
            nodes = self.inner.nodes()
            node = next((n for n in nodes if n.node_id == master.node_id), None)
            if node is None:  # a node labelled with another lakeforge id: the head with the master resource
                candidates = sorted(
                    (n for n in nodes if n.resources.get("master", 0) >= 2), key=lambda n: (not n.is_head, n.node_id)
                )
                if not candidates:
                    raise ProviderError(f"the Ray cluster at {self.address} has no master node for {master.node_id}")
                node = candidates[0]
            self.claims[master.node_id] = (node.ray_node_id, "MASTER")
            log.info("master %s claims Ray node %s (%s)", master.node_id, node.ray_node_id, node.address)

    def add_node(self, spec: NodeSpec) -> None:
        with self._lock:
            nodes = self._ray().nodes()
            taken = {(ray_id, role) for ray_id, role in self.claims.values()}
            resource = spec.role.lower()

            def offers(n: RayNode) -> bool:
                return n.role == spec.role or n.resources.get(resource, 0) > 0

            free = [n for n in nodes if offers(n) and (n.ray_node_id, spec.role) not in taken]
            if not free:
                have = ", ".join(f"{n.node_id}:{n.role or '?'}" for n in nodes) or "none"
                raise ProviderError(
                    f"no free {spec.role} node in the Ray cluster at {self.address} (nodes: {have}; claimed: "
                    f"{len(self.claims)}): add Ray nodes offering the '{resource}' resource, e.g. "
                    f"""ray start --address={self.address} --resources='{{"{resource}": 1}}'"""
                )
            # Prefer nodes labelled with this role, then nodes nothing else claimed, then workers over the head.
            claimed_ray = {ray_id for ray_id, _ in self.claims.values()}
            free.sort(key=lambda n: (n.role != spec.role, n.ray_node_id in claimed_ray, n.is_head, n.node_id))
            node = free[0]
            self.claims[spec.node_id] = (node.ray_node_id, spec.role)
            log.info(
                "node %s (%s) claims Ray node %s (%s, %s CPU)",
                spec.node_id,
                spec.role,
                node.ray_node_id,
                node.address,
                node.num_cpus,
            )

    def remove_node(self, node_id: str, *, graceful: bool) -> None:
        with self._lock:
            claim = self.claims.pop(node_id, None)
        if claim is not None:
            log.info(
                "node %s released Ray node %s (the external cluster keeps running it; its autoscaler owns it)",
                node_id,
                claim[0],
            )

    def decommission(self, node_id: str) -> int:
        with self._lock:
            claim = self.claims.get(node_id)
        if claim is None:
            return 0
        return self._ray().decommission(claim[0], drain=False)

    def alive_nodes(self) -> set[str]:
        alive = {n.ray_node_id for n in self._ray().nodes()}
        with self._lock:
            return {control for control, (ray_id, _) in self.claims.items() if ray_id in alive}

    def run_step(
        self, step_id: str, script: str, args: list[str], spark_conf: dict[str, str], log_dir: Path
    ) -> StepHandleProtocol:
        inner = self._ray().run_step(step_id, script, args, spark_conf, log_dir)
        names: dict[str, str] = {}

        def translate(name: str) -> str:
            if name not in names:
                with contextlib.suppress(ProviderError):
                    names.update(self._name_map(self._ray().nodes()))
            return names.get(name, name)

        return _TranslatedStep(inner, translate)

    def shutdown(self) -> None:
        if self.inner is not None:
            self.inner.shutdown()
        with self._lock:
            self.claims.clear()
