"""The seam between the pure-Python control plane and whatever really runs nodes and steps.

The control plane (:mod:`cluster.api`) decides *what* should exist; a :class:`NodeProvider` makes it so. The
real provider (``cluster/ray_provider.py``, the only module that imports ``ray``/``raydp``) maps each node to a
node of a local multi-node Ray cluster and each step to a Spark driver on RayDP; the tests use an in-memory fake.

Assumptions the control plane makes about every provider (implementations must honour them):

1. **Unique, stable ids.** Node ids are chosen by the control plane (``NodeSpec.node_id``) and never reused;
   step ids likewise. The provider keys everything by these ids.
2. **Synchronous node calls.** :meth:`NodeProvider.start` and :meth:`NodeProvider.add_node` return only once
   the node can host work (or raise :class:`~cluster.errors.ProviderError`); the control plane calls them from a
   provisioning worker thread, never from the reconciler loop, and never two at a time.
   :meth:`NodeProvider.remove_node` returns once the node is gone; removing an unknown or already-removed node
   is a no-op (the control plane may race a node that died on its own).
3. **Bootstrap is not the provider's job.** Bootstrap actions run before ``add_node`` is called, so a node
   only joins (and takes executors) after they all succeeded.
4. **Observed liveness.** :meth:`NodeProvider.alive_nodes` reports what is really alive, including the
   master; a node that vanished without ``remove_node`` is treated as an instance failure (its HDFS replicas
   are lost; its group gets a replacement).
5. **Decommission is a request.** :meth:`NodeProvider.decommission` asks Spark executors on the node to leave
   gracefully (e.g. SIGPWR) and returns at once with how many it asked; the control plane calls
   ``remove_node`` itself after the (time-scaled) notice window. Executors must not come back on that node.
6. **Step handles are polled**, never waited on: :meth:`StepHandle.poll` returns ``None`` while running and
   the exit code after; :meth:`StepHandle.cancel` returns at once (``force=False``: SIGTERM, EMR's
   ``SEND_INTERRUPT``; ``force=True``: SIGKILL to the step and its descendants, ``TERMINATE_PROCESS``).
   A step's driver runs on the master node; its stdout/stderr go under ``log_dir``.
7. **Metrics are cumulative floats** read with :meth:`StepHandle.metrics` (Spark listener counters, see the
   ``METRIC_*`` names below); unknown keys are kept and shown, missing keys mean "not reported".
8. **No leftovers.** After :meth:`NodeProvider.shutdown` no process the provider started is alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

Role = Literal["MASTER", "CORE", "TASK"]
Market = Literal["ON_DEMAND", "SPOT"]

ROLES: tuple[Role, ...] = ("MASTER", "CORE", "TASK")
MARKETS: tuple[Market, ...] = ("ON_DEMAND", "SPOT")

#: Tasks waiting for an executor slot in the step's Spark application (scale-out signal).
METRIC_PENDING_TASKS = "pending_tasks"
#: Tasks running now.
METRIC_RUNNING_TASKS = "running_tasks"
#: Executors requested by dynamic allocation but not yet running (scale-out signal).
METRIC_EXECUTOR_REQUESTS = "executor_requests"
#: Cores per executor of the step's application (converts executor requests into vCPUs).
METRIC_EXECUTOR_CORES = "executor_cores"
#: Executors lost so far (decommissioned or died).
METRIC_LOST_EXECUTORS = "lost_executors"
#: Tasks run again because their output or executor was lost (resubmitted + retried).
METRIC_RECOMPUTED_TASKS = "recomputed_tasks"
#: Per node: ``node_running_tasks:<node_id>`` = tasks running on that node (idleness for scale-in).
METRIC_NODE_RUNNING_TASKS_PREFIX = "node_running_tasks:"
#: Per node: ``node_shuffle_bytes:<node_id>`` = live shuffle output held there (drained last on scale-in).
METRIC_NODE_SHUFFLE_BYTES_PREFIX = "node_shuffle_bytes:"


@dataclass(frozen=True)
class NodeSpec:
    """One node the provider is asked to run.

    Attributes:
        node_id: Control-plane id (``i-...``), unique for the life of the process.
        role: EMR role: the master runs drivers; core nodes hold HDFS and executors; task nodes executors only.
        instance_type: EMR instance type name (``m5.xlarge``) the node stands for.
        market: ``ON_DEMAND`` or ``SPOT``.
        num_cpus: CPUs the simulated node offers on this machine (scaled, see ``ResourceScale``).
        memory_bytes: Memory the simulated node offers on this machine (scaled).
    """

    node_id: str
    role: Literal["MASTER", "CORE", "TASK"]
    instance_type: str
    market: Literal["ON_DEMAND", "SPOT"]
    num_cpus: float
    memory_bytes: int


class StepHandle(Protocol):
    """A running step (one Spark driver) as seen by the control plane."""

    def poll(self) -> int | None:
        """Return ``None`` while the step runs, else its exit code (0 = success)."""
        ...

    def cancel(self, force: bool) -> None:
        """Stop the step: SIGTERM (``force=False``) or SIGKILL of the step and its descendants."""
        ...

    def metrics(self) -> dict[str, float]:
        """Cumulative counters of the step's Spark application (``METRIC_*`` keys)."""
        ...


class NodeProvider(Protocol):
    """Runs nodes and steps for one cluster. See the module docstring for the assumptions."""

    def start(self, master: NodeSpec) -> None:
        """Start the cluster with its master node; returns once the master is up."""
        ...

    def add_node(self, spec: NodeSpec) -> None:
        """Add a core or task node; blocks until the node is up and can host executors."""
        ...

    def remove_node(self, node_id: str, *, graceful: bool) -> None:
        """Remove a node (``graceful=False``: kill it now, as EC2 reclaiming a Spot instance does)."""
        ...

    def decommission(self, node_id: str) -> int:
        """Ask the Spark executors on the node to decommission; return how many were asked."""
        ...

    def alive_nodes(self) -> set[str]:
        """Ids of the nodes that are really up now, master included."""
        ...

    def run_step(
        self, step_id: str, script: str, args: list[str], spark_conf: dict[str, str], log_dir: Path
    ) -> StepHandle:
        """Start a step's driver on the master node and return its handle at once."""
        ...

    def shutdown(self) -> None:
        """Stop every node and step; no process the provider started is left behind."""
        ...
