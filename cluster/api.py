"""The :class:`Cluster` facade: one EMR-like cluster, driven through a :class:`~cluster.provider.NodeProvider`.

Used by the CLI and notebooks::

    cluster = Cluster.create("cluster.yaml")              # backend from the config: local Ray by default
    step_id = cluster.add_step("events", "jobs/events_job.py", ["--rows", "1000"])
    cluster.wait_for_step(step_id)
    print(cluster.cost_report().to_text())
    cluster.terminate()

Life of a cluster: STARTING (master requested) -> BOOTSTRAPPING (master up; every launch node runs the
bootstrap actions, then joins through the provider) -> RUNNING/WAITING (steps run; Spot interruptions, managed
scaling, replacements and the idle timeout are handled by :meth:`Cluster.tick`) -> TERMINATING -> TERMINATED
(or TERMINATED_WITH_ERRORS). A background thread calls :meth:`Cluster.tick` every ``reconcile_interval``
seconds; tests call it themselves with an injected clock and a fake provider. Decisions are made by the pure
functions of :mod:`cluster.reconciler`, :mod:`cluster.scaling`, :mod:`cluster.spot` and :mod:`cluster.steps`;
this module observes, calls them and carries out the result.

Everything about a cluster lives in ``<clusters dir>/<cluster id>/``: ``events.jsonl`` (the timeline),
``state.json`` (latest :meth:`Cluster.describe`), ``config.json``, ``nodes/<node id>/`` (bootstrap logs, HDFS
blocks), ``steps/<step id>/`` (step logs), ``hdfs/namespace.json`` and, once terminated, ``cost.txt``/``cost.json``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

from catalog.settings import Settings, get_settings
from cluster.bootstrap import BootstrapAction, BootstrapRunner, NodeContext, run_bootstrap_actions, run_script
from cluster.config import ClusterConfig, ManagedScalingConfig, SpotConfig, config_problems, load_config
from cluster.cost import CostReport, NodeUsage, PriceBook, StepWindow, cost_report
from cluster.errors import (
    BootstrapError,
    ClusterStateError,
    ConfigError,
    DecommissionRefusedError,
    NotFoundError,
    StepFailedError,
)
from cluster.events import EntityKind, Event, EventLog, JsonValue
from cluster.hdfs import Hdfs
from cluster.instances import DEFAULT_CATALOG, InstanceType, ResourceScale, SpotPriceModel
from cluster.nodes import (
    COUNTED_STATES,
    MAX_CONSECUTIVE_FAILURES,
    CapacityPool,
    Node,
    PoolOption,
    new_cluster_id,
    new_node_id,
    pools_from_config,
)
from cluster.provider import Market, NodeProvider, NodeSpec, StepHandle
from cluster.reconciler import (
    Load,
    after_steps,
    aggregate_load,
    auto_termination_due,
    choose_option,
    launch_outcome,
    plan_additions,
    pool_units,
)
from cluster.scaling import (
    ComputeLimits,
    NodeLoad,
    Pool,
    ScalingAction,
    ScalingDecision,
    ScalingInputs,
    decide,
    node_units,
    scale_in_order,
)
from cluster.spot import (
    Interruption,
    PoissonInterruptions,
    ScheduledInterruption,
    ScheduledInterruptions,
    SpotInterrupter,
    SpotNode,
    Window,
)
from cluster.states import (
    CLUSTER_TRANSITIONS,
    ERROR_REASONS,
    NODE_TRANSITIONS,
    ClusterState,
    ClusterStateChangeReason,
    NodeState,
    StateMachine,
    StepState,
)
from cluster.steps import ActionOnFailure, Step, StepQueue, StepSpec, new_step_id

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

Clock = Callable[[], float]
_R = ClusterStateChangeReason


class InlineExecutor(Executor):
    """Runs submitted work at once in the caller's thread (deterministic tests, single-threaded tools)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the Future carries it, as a pool's would
            future.set_exception(exc)
        return future


@dataclass(frozen=True)
class ResizeResult:
    """What :meth:`Cluster.resize` did.

    Attributes:
        group: The group or fleet.
        targets: New target per pool (instances for groups, units for fleets).
        decommissioning: Nodes asked to leave (or requests withdrawn).
        refused: Nodes that could not leave, with the reason (HDFS replication or capacity).
    """

    group: str
    targets: Mapping[str, float]
    decommissioning: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _poisson(spot: SpotConfig, catalog: Mapping[str, InstanceType], window: Window) -> PoissonInterruptions | None:
    rate = spot.interruption_rate_per_hour
    band = spot.interruption_band
    mult = spot.rate_multiplier
    if rate is None and band is None:
        return None
    if isinstance(rate, dict):
        rates = dict(rate)
        return PoissonInterruptions(lambda t: rates.get(t, 0.0) * mult, seed=spot.seed, window=window)
    if rate is not None:
        fixed = rate
        return PoissonInterruptions(lambda _t: fixed * mult, seed=spot.seed, window=window)
    if band == "advisor":
        return PoissonInterruptions(
            lambda t: catalog[t].advisor_band.rate_per_hour * mult, seed=spot.seed, window=window
        )
    assert band is not None and band != "advisor"
    per_hour = band.rate_per_hour
    return PoissonInterruptions(lambda _t: per_hour * mult, seed=spot.seed, window=window)


class Cluster:
    """One EMR-like cluster.

    Args:
        config: The validated cluster config.
        provider: Runs nodes and steps.
        workdir: Directory holding cluster directories (the cluster uses ``<workdir>/<cluster id>``).
        clock: Current time in seconds (``time.time`` by default; tests inject a fake).
        cluster_id: Id to use (default: a new ``j-...`` id).
        catalog: Instance types.
        executor: Runs node provisioning (default: a thread pool of ``provision_workers``).
        bootstrap_runner: Runs one bootstrap action (default: a subprocess in the node's directory).
        reconcile_interval: Seconds between background reconcile passes.
        provision_workers: Nodes provisioned at once by the default executor.
        node_id_factory: Makes node ids.
        step_id_factory: Makes step ids.
        liveness_grace: Seconds the provider may fail to report liveness (a dead Ray head) before the master
            counts as lost: running steps FAILED, cluster TERMINATED_WITH_ERRORS (INSTANCE_FAILURE).
    """

    def __init__(
        self,
        config: ClusterConfig,
        provider: NodeProvider,
        *,
        workdir: Path,
        clock: Clock = time.time,
        cluster_id: str | None = None,
        catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG,
        executor: Executor | None = None,
        bootstrap_runner: BootstrapRunner = run_script,
        reconcile_interval: float = 1.0,
        provision_workers: int = 1,
        node_id_factory: Callable[[], str] = new_node_id,
        step_id_factory: Callable[[], str] = new_step_id,
        liveness_grace: float = 15.0,
    ) -> None:
        self.config = config
        self.provider = provider
        self.clock = clock
        self.catalog = catalog
        self.id = cluster_id or new_cluster_id()
        self.dir = workdir / self.id
        self.dir.mkdir(parents=True, exist_ok=True)
        now = clock()
        self.events = EventLog(self.dir / "events.jsonl")
        self.machine: StateMachine[ClusterState] = StateMachine.new(
            self.id, CLUSTER_TRANSITIONS, ClusterState.STARTING, now
        )
        self.state_reason: ClusterStateChangeReason | None = None
        self.state_detail = ""
        self.scale = ResourceScale(config.resources.cpus_per_vcpu, config.resources.memory_mib_per_gib)
        spot = config.spot
        self.prices = PriceBook(
            catalog,
            SpotPriceModel(
                catalog,
                seed=spot.seed,
                drift=spot.price_drift,
                step_seconds=spot.price_step_seconds,
                volatility=spot.price_volatility,
                origin=now,
            ),
        )
        window = Window(spot.notice_seconds, spot.time_scale)
        scheduled = [ScheduledInterruption(s.at_seconds, s.node_id, s.group, s.role, s.count) for s in spot.scheduled]
        self.spot = SpotInterrupter(
            window,
            poisson=_poisson(spot, catalog, window),
            scheduled=ScheduledInterruptions(scheduled, origin=now, window=window) if scheduled else None,
        )
        self.pools: dict[str, CapacityPool] = {p.name: p for p in pools_from_config(config, catalog)}
        self.nodes: dict[str, Node] = {}
        self.hdfs = (
            Hdfs(self.id, self.dir, replication=config.replication(), clock=clock, events=self.events)
            if config.hdfs
            else None
        )
        self.queue = StepQueue(
            self.id,
            concurrency=config.step_concurrency,
            runner=self._run_step,
            events=self.events,
            log_root=self.dir / "steps",
            id_factory=step_id_factory,
        )
        self.bootstrap_actions = tuple(
            BootstrapAction(a.name or f"{i + 1}-{Path(a.path).stem}", a.path, tuple(a.args))
            for i, a in enumerate(config.bootstrap_actions)
        )
        self.bootstrap_runner = bootstrap_runner
        self.reconcile_interval = reconcile_interval
        self.last_scaling_decision: ScalingDecision | None = None
        self._node_id_factory = node_id_factory
        self._lock = threading.RLock()
        self._provision_prefix = f"provision-{self.id}"
        self._executor = executor or ThreadPoolExecutor(
            max_workers=provision_workers, thread_name_prefix=self._provision_prefix
        )
        self._futures: list[Future[None]] = []
        self._master_ready = threading.Event()
        self._master_failed = False
        self._started = False
        self._termination: ClusterStateChangeReason | None = None
        self._finishing = False
        self._finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_scale_out_at: float | None = None
        self._last_scale_in_at: float | None = None
        self._last_scaling_eval: float | None = None
        self._misses_seen = 0
        self.liveness_grace = liveness_grace
        self._liveness_failed_since: float | None = None
        self._liveness_failures = 0
        self.events.record(
            EntityKind.CLUSTER,
            self.id,
            ClusterState.STARTING.value,
            "cluster requested",
            time=now,
            details={"name": config.name, "release": config.release, "dir": str(self.dir)},
        )
        (self.dir / "config.json").write_text(config.model_dump_json(indent=1), encoding="utf-8")
        for step_config in config.steps:
            self.queue.submit(step_config.to_spec(), now)
        log.info("cluster %s (%s) requested in %s", self.id, config.name, self.dir)

    # -- construction --------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        config: ClusterConfig | Path | str,
        provider: NodeProvider | None = None,
        *,
        backend: str | None = None,
        address: str | None = None,
        cluster_id: str | None = None,
        settings: Settings | None = None,
        workdir: Path | None = None,
        background: bool = True,
        wait: bool = True,
        timeout: float = 600.0,
        clock: Clock = time.time,
        executor: Executor | None = None,
        bootstrap_runner: BootstrapRunner = run_script,
    ) -> Cluster:
        """Validate the config, start the cluster and (by default) wait until it is RUNNING/WAITING or ended.

        From a notebook::

            cluster = Cluster.create("cluster.yaml")                             # backend from the config
            cluster = Cluster.create("cluster.yaml", backend="ray", address="10.0.0.5:6379")

        Args:
            config: A config, or the path of its YAML file.
            provider: Runs nodes and steps (default: built from ``backend``, see :mod:`cluster.backends`).
            backend: ``local``, ``ray`` or a plug-in; overrides the config's ``backend``.
            address: The Ray head for backend ``ray``; overrides the config's ``address``.
            cluster_id: Id to use (default: a new ``j-...`` id).
            settings: Where clusters live and how often to reconcile (default: :func:`get_settings`).
            workdir: Overrides ``settings.clusters_dir``.
            background: Start the reconcile thread.
            wait: Block until the launch is over.
            timeout: Longest wait, seconds.
            clock: Time source.
            executor: Runs provisioning (default: a thread pool).
            bootstrap_runner: Runs bootstrap actions.

        Raises:
            ConfigError: The config file or the backend is bad (before anything starts).
            TimeoutError: The launch took longer than ``timeout`` (the cluster is terminated).
        """
        from cluster.backends import build_provider, resolve_backend

        cfg = config if isinstance(config, ClusterConfig) else load_config(config)
        settings = settings or get_settings()
        root = workdir or settings.clusters_dir
        cluster_id = cluster_id or new_cluster_id()
        if provider is None:
            provider = build_provider(resolve_backend(cfg, backend, address), root / cluster_id, cfg)
        cluster = cls(
            cfg,
            provider,
            workdir=root,
            clock=clock,
            cluster_id=cluster_id,
            executor=executor,
            bootstrap_runner=bootstrap_runner,
            reconcile_interval=settings.cluster.reconcile_interval_seconds,
            provision_workers=settings.cluster.provision_workers,
        )
        try:
            cluster.start()
            if background:
                cluster.start_reconciler()
            if wait:
                cluster.wait_until_ready(timeout)
        except BaseException:
            cluster.terminate(_R.INTERNAL_ERROR, "launch interrupted")
            raise
        return cluster

    def start(self) -> None:
        """Request the launch nodes: the master first, then every core and task group's count or target."""
        with self._lock:
            if self._started or self.state != ClusterState.STARTING:
                raise ClusterStateError(f"cluster {self.id} was already started")
            self._started = True
            now = self.clock()
            launch: list[Node] = []
            for pool in self.pools.values():
                if pool.role == "MASTER":
                    for i in range(int(pool.target)):
                        launch.append(self._new_node(pool, pool.options[0], now, at_launch=True, virtual=i > 0))
            for pool, option in plan_additions(list(self.pools.values()), [], self._price):
                launch.append(self._new_node(pool, option, now, at_launch=True))
            for node in launch:
                self._submit(node)
            self._check_launch()
        self._after_pass()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    # -- queries -------------------------------------------------------------------------------------------

    @property
    def state(self) -> ClusterState:
        return self.machine.state

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise NotFoundError("node", node_id) from None

    def list_nodes(self, *, role: str | None = None, states: frozenset[NodeState] | None = None) -> list[Node]:
        """Nodes in request order, optionally only of ``role`` and in ``states``."""
        with self._lock:
            return [
                n
                for n in self.nodes.values()
                if (role is None or n.role == role) and (states is None or n.state in states)
            ]

    def step(self, step_id: str) -> Step:
        return self.queue.get(step_id)

    def list_steps(self, states: frozenset[StepState] | None = None) -> list[Step]:
        with self._lock:
            return self.queue.list_steps(states)

    def describe_step(self, step_id: str) -> dict[str, JsonValue]:
        with self._lock:
            return self.queue.get(step_id).to_json()

    def timeline(
        self,
        *,
        kind: EntityKind | None = None,
        entity_id: str | None = None,
        dst: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Event]:
        """Events of this cluster matching every given filter, in order (see :meth:`EventLog.query`)."""
        return self.events.query(kind=kind, entity_id=entity_id, dst=dst, since=since, until=until)

    def describe(self) -> dict[str, JsonValue]:
        """Everything about the cluster now, as JSON-ready data (also written to ``state.json``)."""
        with self._lock:
            nodes = list(self.nodes.values())
            groups: list[JsonValue] = []
            for pool in self.pools.values():
                info = pool.to_json()
                info["units"] = pool_units(pool, nodes)
                info["running"] = sum(1 for n in nodes if n.pool == pool.name and n.state == NodeState.RUNNING)
                groups.append(info)
            hdfs: JsonValue = None
            if self.hdfs is not None:
                hdfs = {
                    "replication": self.hdfs.replication,
                    "live_datanodes": list(self.hdfs.live_nodes()),
                    "capacity": dict(self.hdfs.capacity()),
                    "lost_files": list(self.hdfs.lost_files()),
                }
            report = self.cost_report()
            return {
                "cluster_id": self.id,
                "name": self.config.name,
                "release": self.config.release,
                "state": self.state.value,
                "state_reason": self.state_reason.value if self.state_reason else None,
                "state_detail": self.state_detail,
                "created_at": self.machine.history[0].time,
                "ready_at": self.machine.entered(ClusterState.WAITING) or self.machine.entered(ClusterState.RUNNING),
                "ended_at": self.machine.since if self.machine.terminal else None,
                "dir": str(self.dir),
                "step_concurrency": self.queue.concurrency,
                "groups": groups,
                "nodes": [n.to_json() for n in nodes],
                "steps": [s.to_json() for s in self.queue.list_steps()],
                "hdfs": hdfs,
                "managed_scaling": self.last_scaling_decision.to_json() if self.last_scaling_decision else None,
                "cost_usd": round(report.total_usd, 6),
                "history": [{"state": h.state.value, "time": h.time, "reason": h.reason} for h in self.machine.history],
            }

    def cost_report(self) -> CostReport:
        """Costs so far (final once terminated): per node, per step, total."""
        with self._lock:
            now = self.machine.since if self.machine.terminal else self.clock()
            usages = [
                NodeUsage(n.node_id, n.role, n.instance_type, n.market, n.launched_at, n.ended_at)
                for n in self.nodes.values()
                if n.launched_at is not None
            ]
            windows = [
                StepWindow(s.step_id, s.spec.name, s.started_at, s.ended_at)
                for s in self.queue.list_steps()
                if s.started_at is not None
            ]
            return cost_report(usages, windows, self.prices, now)

    # -- steps ---------------------------------------------------------------------------------------------

    def add_step(
        self,
        name: str,
        script: str,
        args: Sequence[str] = (),
        *,
        spark_conf: Mapping[str, str] | None = None,
        action_on_failure: ActionOnFailure | str = ActionOnFailure.CONTINUE,
    ) -> str:
        """Queue a step; it starts when a concurrency slot is free and earlier steps have started.

        Raises:
            ClusterStateError: The cluster is terminating or terminated.
            ConfigError: Concurrency > 1 and the action is not CONTINUE.
        """
        action = ActionOnFailure.parse(action_on_failure) if isinstance(action_on_failure, str) else action_on_failure
        return self.submit_step(StepSpec(name, script, tuple(args), dict(spark_conf or {}), action))

    def submit_step(self, spec: StepSpec) -> str:
        """Queue a step given as a :class:`StepSpec`; see :meth:`add_step`."""
        with self._lock:
            if self._termination is not None or self.machine.terminal:
                raise ClusterStateError(f"cluster {self.id} is {self.state.value}; it takes no more steps")
            now = self.clock()
            step = self.queue.submit(spec, now)
            if self.state in (ClusterState.RUNNING, ClusterState.WAITING):
                self._process_steps(now)
        self._after_pass()
        return step.step_id

    def cancel_step(self, step_id: str, *, force: bool = False) -> StepState:
        """Cancel a pending or running step (``force``: SIGKILL instead of SIGTERM); return its new state."""
        with self._lock:
            step = self.queue.cancel(step_id, self.clock(), force=force)
            return step.state

    def set_step_concurrency(self, concurrency: int) -> None:
        """Change StepConcurrencyLevel (> 1 needs every active step to be CONTINUE)."""
        with self._lock:
            self.queue.set_concurrency(concurrency)
            self.events.record(
                EntityKind.CLUSTER, self.id, "STEP_CONCURRENCY", f"set to {concurrency}", time=self.clock()
            )

    # -- capacity ------------------------------------------------------------------------------------------

    def resize(
        self,
        group: str,
        count: int | None = None,
        *,
        on_demand_units: float | None = None,
        spot_units: float | None = None,
    ) -> ResizeResult:
        """Set a group's instance count, or a fleet's on-demand/Spot targets (a "resize").

        Growing requests nodes at once. Shrinking withdraws requests not started yet, then decommissions
        running nodes (task before core, Spot before on-demand, idle first); core nodes leave only if HDFS can
        re-replicate their blocks (the others stay and are reported in ``refused``). A suspended group resumes.

        Raises:
            NotFoundError: No such group.
            ClusterStateError: The master group, or the cluster does not take changes now.
            ValueError: Negative or missing targets.
        """
        with self._lock:
            if self.state not in (ClusterState.RUNNING, ClusterState.WAITING) or self._termination is not None:
                raise ClusterStateError(f"cluster {self.id} is {self.state.value}; resize needs RUNNING or WAITING")
            pools = [p for p in self.pools.values() if p.group == group]
            if not pools:
                raise NotFoundError("group", group)
            if pools[0].role == "MASTER":
                raise ClusterStateError("the master group cannot be resized")
            wanted: dict[str, float] = {}
            if pools[0].is_fleet:
                if on_demand_units is not None:
                    wanted[f"{group}:ON_DEMAND"] = on_demand_units
                if spot_units is not None:
                    wanted[f"{group}:SPOT"] = spot_units
            elif count is not None:
                wanted[group] = float(count)
            if not wanted or any(v < 0 for v in wanted.values()):
                raise ValueError("give a non-negative count (group) or on_demand_units/spot_units (fleet)")
            now = self.clock()
            leaving: list[str] = []
            refused: list[tuple[str, str]] = []
            targets: dict[str, float] = {}
            for name, target in wanted.items():
                pool = self.pools[name]
                pool.suspended = False
                pool.consecutive_failures = 0
                excess = pool_units(pool, self.nodes.values()) - target
                members = [n for n in self.nodes.values() if n.pool == name]
                requested = [n for n in reversed(members) if n.state == NodeState.REQUESTED]
                running = [n for n in members if n.state == NodeState.RUNNING]
                order = {x.node_id: x for x in running}
                ranked = [order[x.node_id] for x in scale_in_order([self._node_load(n, now) for n in running])]
                for node in [*requested, *ranked]:
                    if excess <= 1e-9:
                        break
                    if node.weight > excess + 1e-9:
                        continue
                    try:
                        self._scale_in_node(node, now, f"resize of {group}")
                    except DecommissionRefusedError as exc:
                        refused.append((node.node_id, exc.reason))
                        self.events.record(EntityKind.HDFS, node.node_id, "DECOMMISSION_REFUSED", exc.reason, time=now)
                        continue
                    leaving.append(node.node_id)
                    excess -= node.weight
                # A partial shrink: what could not leave stays in the target (else it would be "replaced").
                pool.target = max(target, pool_units(pool, self.nodes.values()))
                targets[name] = pool.target
                self.events.record(
                    EntityKind.GROUP,
                    name,
                    "RESIZED",
                    f"target set to {pool.target:g}",
                    time=now,
                    details={"requested": target, "decommissioning": list(leaving), "refused": [r[0] for r in refused]},
                )
            self._launch_additions(now)
        self._after_pass()
        return ResizeResult(group, targets, tuple(leaving), tuple(refused))

    def put_managed_scaling_policy(self, policy: ManagedScalingConfig | None) -> None:
        """Attach (or with ``None`` remove) the managed scaling policy, as EMR's PutManagedScalingPolicy /
        RemoveManagedScalingPolicy do; the next evaluation uses it.

        Raises:
            ConfigError: The policy breaks a rule (minimum above maximum, ...).
            ClusterStateError: The cluster is terminating or terminated.
        """
        with self._lock:
            if self._termination is not None or self.machine.terminal:
                raise ClusterStateError(f"cluster {self.id} is {self.state.value}; it takes no policy")
            updated = self.config.model_copy(update={"managed_scaling": policy})
            problems = [p for p in config_problems(updated) if p[0].startswith("managed_scaling")]
            if problems:
                raise ConfigError(problems[0][0], problems[0][1], problems=problems)
            self.config = updated
            self._last_scaling_eval = None
            self.events.record(
                EntityKind.SCALING,
                self.id,
                "POLICY",
                "managed scaling policy removed" if policy is None else "managed scaling policy set",
                time=self.clock(),
                details=None if policy is None else policy.model_dump(mode="json"),
            )

    def interrupt(self, node_id: str) -> Interruption:
        """Send a Spot interruption notice to a running Spot node now (as AWS FIS does).

        Raises:
            NotFoundError: No such node.
            ClusterStateError: The node is not a running Spot node.
        """
        with self._lock:
            node = self.node(node_id)
            if node.market != "SPOT" or node.state != NodeState.RUNNING:
                raise ClusterStateError(
                    f"{node_id} is a {node.state.value} {node.market} node; only running Spot nodes"
                )
            now = self.clock()
            interruption = self.spot.request(node_id, now)
            self._process_spot(now)
        self._after_pass()
        return interruption

    def terminate_instances(self, node_ids: Sequence[str]) -> None:
        """Kill nodes at once, without draining and without replacement (EC2InstanceIdsToTerminate).

        A core node's HDFS replicas go with it; files whose only replica was there are lost.

        Raises:
            NotFoundError: No such node.
            ClusterStateError: The master, or a node not running.
        """
        with self._lock:
            now = self.clock()
            for node_id in node_ids:
                node = self.node(node_id)
                if node.role == "MASTER":
                    raise ClusterStateError("the master cannot be terminated on its own; terminate the cluster")
                if node.state not in (NodeState.RUNNING, NodeState.DECOMMISSIONING):
                    raise ClusterStateError(f"{node_id} is {node.state.value}")
                self._safe_remove(node, graceful=False)
                pool = self.pools[node.pool]
                pool.target = max(0.0, pool.target - node.weight)
                self._node_gone(node, NodeState.TERMINATED, "terminated by request (EC2InstanceIdsToTerminate)", now)
        self._after_pass()

    # -- termination ---------------------------------------------------------------------------------------

    def terminate(
        self, reason: ClusterStateChangeReason = _R.USER_REQUEST, detail: str = "terminate requested"
    ) -> None:
        """Stop every step and node; returns when the cluster is TERMINATED (no provider process left)."""
        with self._lock:
            if self.machine.terminal:
                return
            self._request_termination(reason, detail)
        self._finish_termination()
        if not threading.current_thread().name.startswith(self._provision_prefix):
            self._finished.wait(timeout=120)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    # -- waiting -------------------------------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], bool], timeout: float, poll: float = 0.2) -> None:
        """Block until ``predicate()`` holds (checked under the cluster lock), driving :meth:`tick` if no
        background thread does.

        Raises:
            TimeoutError: ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if predicate():
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"cluster {self.id}: condition not met within {timeout:g}s (state {self.state})")
            if self._thread is None or not self._thread.is_alive():
                self.tick()
            time.sleep(poll)

    def wait_until_ready(self, timeout: float = 600.0) -> ClusterState:
        """Wait until the launch is over: RUNNING, WAITING or ended. Returns the state."""
        ready = (ClusterState.RUNNING, ClusterState.WAITING)
        self.wait_until(lambda: self.state in ready or self.machine.terminal, timeout)
        return self.state

    def wait_for_step(self, step_id: str, timeout: float = 3600.0, *, raise_on_failure: bool = False) -> Step:
        """Wait until the step ended; with ``raise_on_failure`` a FAILED step raises :class:`StepFailedError`."""
        step = self.queue.get(step_id)
        self.wait_until(lambda: step.machine.terminal, timeout)
        if raise_on_failure and step.state == StepState.FAILED:
            raise StepFailedError(step_id, step.failure_reason or "failed", str(step.log_dir))
        return step

    def wait_terminated(self, timeout: float = 600.0) -> ClusterState:
        self.wait_until(lambda: self.machine.terminal, timeout)
        return self.state

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until termination finished its work too (provider shut down, cost and state files written)."""
        return self._finished.wait(timeout)

    # -- the reconcile loop --------------------------------------------------------------------------------

    def start_reconciler(self) -> None:
        """Run :meth:`tick` every ``reconcile_interval`` seconds in a daemon thread until termination."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=f"reconciler-{self.id}", daemon=True)
        self._thread.start()

    def stop_reconciler(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.reconcile_interval):
            try:
                self.tick()
            except Exception:
                log.exception("cluster %s: reconcile pass failed", self.id)
            if self.machine.terminal:
                break

    def tick(self) -> None:
        """One reconcile pass: liveness, Spot notices and reclaims, drains, steps, idle timeout, managed
        scaling, replacements; finishes a requested termination."""
        alive: set[str] | Exception | None = None
        if self._termination is None and self.state in (ClusterState.RUNNING, ClusterState.WAITING):
            # Outside the lock: a dead Ray head makes this call wait for its timeout, and readers
            # (describe, the CLI) must not wait with it.
            try:
                alive = self.provider.alive_nodes()
            except Exception as exc:  # any failure to observe: judged by _observe_liveness
                alive = exc
        with self._lock:
            if self.machine.terminal:
                return
            now = self.clock()
            if self._termination is None:
                if self.state in (ClusterState.STARTING, ClusterState.BOOTSTRAPPING):
                    self._check_launch()
                elif self.state in (ClusterState.RUNNING, ClusterState.WAITING):
                    observed = alive
                    for phase in (
                        lambda t: self._observe_liveness(t, observed),
                        self._process_spot,
                        self._complete_decommissions,
                        self._process_steps,
                        self._check_idle,
                        self._evaluate_scaling,
                        self._launch_additions,
                    ):
                        phase(now)
                        if self._termination is not None:
                            break
        self._after_pass()

    def _after_pass(self) -> None:
        if self._termination is not None and not self.machine.terminal:
            self._finish_termination()
        self._write_state()

    # -- phases (called with the lock held) ----------------------------------------------------------------

    def _observe_liveness(self, now: float, alive: set[str] | Exception | None) -> None:
        if alive is None:
            return
        if isinstance(alive, Exception):
            self._provider_unreachable(now, alive)
            return
        if self._liveness_failed_since is not None:
            log.info("cluster %s: provider liveness is back", self.id)
        self._liveness_failed_since = None
        self._liveness_failures = 0
        for node in list(self.nodes.values()):
            if node.virtual or node.state not in (NodeState.RUNNING, NodeState.DECOMMISSIONING):
                continue
            if node.node_id in alive:
                continue
            dst = NodeState.SPOT_INTERRUPTED if node.interruption is not None else NodeState.TERMINATED
            if node.role == "MASTER":
                self.queue.fail_running(now, "master node lost")
                self._node_gone(node, dst, "instance failure: master node vanished", now)
                self._request_termination(_R.INSTANCE_FAILURE, f"master {node.node_id} lost")
                return
            self._node_gone(node, dst, "instance failure: node vanished", now)

    def _provider_unreachable(self, now: float, exc: Exception) -> None:
        """The provider cannot say which nodes live (e.g. the Ray head is dead): after ``liveness_grace`` seconds
        (and at least two failed passes) the master counts as lost."""
        if self._liveness_failed_since is None:
            self._liveness_failed_since = now
            log.warning("cluster %s: provider liveness unavailable: %s", self.id, exc)
        self._liveness_failures += 1
        down = now - self._liveness_failed_since
        if self._liveness_failures < 2 or down < self.liveness_grace:
            return
        detail = f"the provider has not answered for {down:.0f}s ({exc})"
        self.events.record(EntityKind.CLUSTER, self.id, "PROVIDER_UNREACHABLE", detail, time=now)
        self.queue.fail_running(now, f"master node lost: {detail}")
        masters = [n for n in self.nodes.values() if n.role == "MASTER" and not n.virtual]
        for master in masters:
            if master.state in (NodeState.RUNNING, NodeState.DECOMMISSIONING):
                self._node_gone(master, NodeState.TERMINATED, f"instance failure: {detail}", now)
        name = masters[0].node_id if masters else "master"
        self._request_termination(_R.INSTANCE_FAILURE, f"master {name} unreachable: {detail}")

    def _process_spot(self, now: float) -> None:
        running = [
            SpotNode(n.node_id, n.instance_type, n.role, n.group, n.running_at or now)
            for n in self.nodes.values()
            if n.market == "SPOT" and n.state == NodeState.RUNNING and not n.virtual
        ]
        for interruption in self.spot.collect(now, running):
            self._notice(self.nodes[interruption.node_id], interruption, now)
        scheduled = self.spot.scheduled
        if scheduled is not None and len(scheduled.misses) > self._misses_seen:
            for miss in scheduled.misses[self._misses_seen :]:
                self.events.record(
                    EntityKind.SPOT,
                    self.id,
                    "SCHEDULED_MISS",
                    "scheduled interruption found no running Spot node to interrupt",
                    time=now,
                    details={"at_seconds": miss.at_seconds, "group": miss.group, "role": miss.role},
                )
            self._misses_seen = len(scheduled.misses)

    def _notice(self, node: Node, interruption: Interruption, now: float) -> None:
        node.interruption = interruption
        node.drain_deadline = interruption.terminate_at
        self._move_node(node, NodeState.DECOMMISSIONING, f"spot interruption notice ({interruption.cause})")
        self.events.record(
            EntityKind.SPOT,
            node.node_id,
            "NOTICE",
            f"spot interruption notice ({interruption.cause}), reclaimed at {interruption.terminate_at:.1f}",
            time=now,
            details={
                "cause": interruption.cause,
                "notice_at": interruption.notice_at,
                "terminate_at": interruption.terminate_at,
                "instance_type": node.instance_type,
                "role": node.role,
            },
        )
        if node.role == "CORE" and self.hdfs is not None:
            try:
                self.hdfs.decommission(node.node_id)
            except DecommissionRefusedError as exc:
                self.events.record(EntityKind.HDFS, node.node_id, "DECOMMISSION_REFUSED", exc.reason, time=now)
        if node.role != "MASTER":
            node.executors_decommissioned = self._safe_decommission(node)
            self._attribute_lost_executors(node.executors_decommissioned)
        self._charge_running_steps(node, now)

    def _complete_decommissions(self, now: float) -> None:
        for node in list(self.nodes.values()):
            if node.state != NodeState.DECOMMISSIONING or node.drain_deadline is None or node.drain_deadline > now:
                continue
            if node.interruption is None:
                self._safe_remove(node, graceful=True)
                self._move_node(node, NodeState.TERMINATED, "decommissioned and removed")
                continue
            self._safe_remove(node, graceful=False)
            if node.role == "MASTER":
                self.queue.fail_running(now, "master node reclaimed (Spot)")
                self._node_gone(node, NodeState.SPOT_INTERRUPTED, "spot instance reclaimed", now)
                self._request_termination(_R.INSTANCE_FAILURE, f"Spot master {node.node_id} reclaimed")
                return
            self._node_gone(node, NodeState.SPOT_INTERRUPTED, "spot instance reclaimed", now)

    def _process_steps(self, now: float) -> None:
        outcome = self.queue.tick(now, may_start=True)
        if outcome.cluster_action == ActionOnFailure.TERMINATE_CLUSTER:
            self._request_termination(_R.STEP_FAILURE, f"step {outcome.failed_step} failed (TERMINATE_CLUSTER)")
            return
        verdict = after_steps(self.state, queue_idle=self.queue.idle, keep_alive=self.config.keep_alive)
        if verdict.terminate is not None:
            self._request_termination(verdict.terminate, verdict.reason)
            return
        if verdict.dst is not None:
            reason = verdict.reason
            if outcome.cluster_action == ActionOnFailure.CANCEL_AND_WAIT:
                reason = f"step {outcome.failed_step} failed (CANCEL_AND_WAIT)"
            self._move_cluster(verdict.dst, reason)
        load = self._load()
        for node in self.nodes.values():
            if node.state == NodeState.RUNNING and node.role != "MASTER":
                if node.node_id in load.busy_nodes:
                    node.last_busy_at = now
                node.holds_shuffle = node.node_id in load.shuffle_nodes

    def _check_idle(self, now: float) -> None:
        auto = self.config.auto_termination
        idle_since = self.machine.since if self.state == ClusterState.WAITING else None
        if auto is not None and auto_termination_due(idle_since, now, auto.idle_timeout_seconds):
            self._request_termination(_R.IDLE_TIMEOUT, f"idle for {now - (idle_since or now):.0f}s (auto-termination)")

    def _evaluate_scaling(self, now: float) -> None:
        policy = self.config.managed_scaling
        if policy is None:
            return
        if self._last_scaling_eval is not None and now - self._last_scaling_eval < policy.evaluation_interval_seconds:
            return
        self._last_scaling_eval = now
        load = self._load()
        unit = policy.unit_type
        loads = [
            self._node_load(n, now) for n in self.nodes.values() if n.role != "MASTER" and n.state in COUNTED_STATES
        ]
        pools: list[Pool] = []
        for p in self.pools.values():
            if p.role == "MASTER" or p.suspended:
                continue
            option = choose_option(p, self._price)
            itype = self.catalog[option.instance_type]
            pools.append(Pool(p.name, p.role, p.market, node_units(unit, itype.vcpu, option.weight), itype.vcpu))
        inputs = ScalingInputs(
            now=now,
            limits=ComputeLimits(unit, policy.minimum, policy.maximum, policy.maximum_on_demand, policy.maximum_core),
            nodes=tuple(loads),
            pools=tuple(pools),
            pending_tasks=load.pending_tasks,
            running_tasks=load.running_tasks,
            executor_requests=load.executor_requests,
            executor_cores=load.executor_cores,
            last_scale_out_at=self._last_scale_out_at,
            last_scale_in_at=self._last_scale_in_at,
            scale_out_cooldown=policy.scale_out_cooldown_seconds,
            scale_in_cooldown=policy.scale_in_cooldown_seconds,
            idle_seconds_to_scale_in=policy.idle_seconds_before_scale_in,
            min_core_nodes=self.hdfs.replication if self.hdfs is not None else 0,
        )
        decision = decide(inputs)
        self.last_scaling_decision = decision
        if decision.action == ScalingAction.NONE:
            log.debug("cluster %s managed scaling: no change (%s)", self.id, decision.reason)
            return
        self.events.record(
            EntityKind.SCALING, self.id, decision.action.value, decision.reason, time=now, details=decision.to_json()
        )
        log.info("cluster %s managed scaling: %s (%s)", self.id, decision.action.value, decision.reason)
        if decision.action == ScalingAction.SCALE_OUT:
            for addition in decision.additions:
                pool = self.pools[addition.pool]
                option = choose_option(pool, self._price)
                pool.target += addition.count * option.weight
                self.events.record(
                    EntityKind.GROUP, pool.name, "TARGET", f"managed scale-out to {pool.target:g}", time=now
                )
            self._last_scale_out_at = now
            return
        removed = 0
        for node_id in decision.removals:
            try:
                self._scale_in_node(self.nodes[node_id], now, "managed scale-in")
                removed += 1
            except DecommissionRefusedError as exc:
                self.events.record(EntityKind.HDFS, node_id, "DECOMMISSION_REFUSED", exc.reason, time=now)
        if removed:
            self._last_scale_in_at = now

    def _launch_additions(self, now: float) -> None:
        for pool, option in plan_additions(list(self.pools.values()), list(self.nodes.values()), self._price):
            self._submit(self._new_node(pool, option, now))

    # -- helpers -------------------------------------------------------------------------------------------

    def _price(self, instance_type: str, market: Market) -> float:
        if market == "SPOT":
            return self.prices.spot.price(instance_type, self.clock())
        return self.catalog[instance_type].on_demand_hourly

    def _load(self) -> Load:
        workers = [n.node_id for n in self.nodes.values() if n.role != "MASTER" and n.state == NodeState.RUNNING]
        return aggregate_load([s.metrics for s in self.queue.running], workers)

    def _node_load(self, node: Node, now: float) -> NodeLoad:
        itype = self.catalog[node.instance_type]
        unit = self.config.managed_scaling.unit_type if self.config.managed_scaling else None
        units = node_units(unit, itype.vcpu, node.weight) if unit is not None else node.weight
        idle = max(0.0, now - node.last_busy_at) if node.state == NodeState.RUNNING else 0.0
        return NodeLoad(
            node.node_id, node.role, node.market, units, itype.vcpu, idle, node.holds_shuffle, node.in_flight
        )

    def _new_node(
        self, pool: CapacityPool, option: PoolOption, now: float, *, at_launch: bool = False, virtual: bool = False
    ) -> Node:
        itype = self.catalog[option.instance_type]
        node_id = self._node_id_factory()
        spec = NodeSpec(
            node_id, pool.role, itype.name, pool.market, self.scale.num_cpus(itype), self.scale.memory_bytes(itype)
        )
        node = Node(
            node_id=node_id,
            role=pool.role,
            pool=pool.name,
            group=pool.group,
            instance_type=itype.name,
            market=pool.market,
            weight=option.weight,
            spec=spec,
            machine=StateMachine.new(node_id, NODE_TRANSITIONS, NodeState.REQUESTED, now),
            at_launch=at_launch,
            virtual=virtual,
            last_busy_at=now,
        )
        self.nodes[node_id] = node
        self.events.record(
            EntityKind.NODE,
            node_id,
            NodeState.REQUESTED.value,
            "requested" + (" (standby master, not run by the provider)" if virtual else ""),
            time=now,
            details={
                "role": pool.role,
                "pool": pool.name,
                "instance_type": itype.name,
                "market": pool.market,
                "num_cpus": spec.num_cpus,
                "memory_bytes": spec.memory_bytes,
            },
        )
        return node

    def _submit(self, node: Node) -> None:
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._executor.submit(self._provision, node.node_id))

    def _move_node(self, node: Node, dst: NodeState, reason: str) -> None:
        src = node.state
        now = self.clock()
        node.machine.transition(dst, time=now, reason=reason)
        self.events.record(
            EntityKind.NODE,
            node.node_id,
            dst.value,
            reason,
            time=now,
            src=src.value,
            details={"role": node.role, "instance_type": node.instance_type, "market": node.market, "pool": node.pool},
        )
        log.info(
            "cluster %s node %s (%s %s %s): %s -> %s (%s)",
            self.id,
            node.node_id,
            node.role,
            node.instance_type,
            node.market,
            src.value,
            dst.value,
            reason,
        )

    def _move_cluster(self, dst: ClusterState, reason: str) -> None:
        src = self.state
        now = self.clock()
        self.machine.transition(dst, time=now, reason=reason)
        self.events.record(EntityKind.CLUSTER, self.id, dst.value, reason, time=now, src=src.value)
        log.info("cluster %s: %s -> %s (%s)", self.id, src.value, dst.value, reason)

    def _safe_decommission(self, node: Node) -> int:
        try:
            return self.provider.decommission(node.node_id)
        except Exception:
            log.warning("cluster %s node %s: decommission request failed", self.id, node.node_id, exc_info=True)
            return 0

    def _safe_remove(self, node: Node, *, graceful: bool) -> None:
        if node.virtual:
            return
        try:
            self.provider.remove_node(node.node_id, graceful=graceful)
        except Exception:
            log.warning("cluster %s node %s: remove failed", self.id, node.node_id, exc_info=True)

    def _attribute_lost_executors(self, count: int) -> None:
        """Share executors lost with a node among running steps (evenly, remainder to the earliest)."""
        running = [s for s in self.queue.running if s.state == StepState.RUNNING]
        if not running or count <= 0:
            return
        share, rest = divmod(count, len(running))
        for i, step in enumerate(running):
            step.counters.lost_executors += share + (1 if i < rest else 0)

    def _node_gone(self, node: Node, dst: NodeState, reason: str, now: float) -> None:
        """A node was lost (not drained): its HDFS replicas go, running steps are charged."""
        self._move_node(node, dst, reason)
        if node.role == "CORE" and self.hdfs is not None:
            self.hdfs.lose_node(node.node_id)
        self._charge_running_steps(node, now)

    def _charge_running_steps(self, node: Node, now: float) -> None:
        """Charge the steps running now with the node's interruption or loss.

        A step counts the node once, at the Spot notice (it lost the node's executors then, even if it ends before
        the node goes) or at the loss of a node that had no notice. Wasted node-seconds are the node's time within
        the step, shared among the running steps: up to the notice, then the notice window at the loss.
        """
        running = [s for s in self.queue.running if s.started_at is not None]
        for step in running:
            if step.step_id in node.charged_steps and node.charged_at is not None:
                start = node.charged_at
            else:
                start = max(step.started_at or now, node.running_at or now)
                step.counters.interrupted_nodes += 1
                node.charged_steps.add(step.step_id)
            step.counters.wasted_node_seconds += max(0.0, now - start) / len(running)
        node.charged_at = now

    def _scale_in_node(self, node: Node, now: float, reason: str) -> None:
        """Withdraw a request, or drain a running node (HDFS first for core nodes); lowers its pool's target."""
        pool = self.pools[node.pool]
        if node.state == NodeState.REQUESTED:
            self._move_node(node, NodeState.TERMINATED, f"request cancelled ({reason})")
        elif node.state == NodeState.RUNNING:
            if node.role == "CORE" and self.hdfs is not None:
                self.hdfs.decommission(node.node_id)  # raises DecommissionRefusedError, changing nothing
            self._move_node(node, NodeState.DECOMMISSIONING, reason)
            node.executors_decommissioned = self._safe_decommission(node)
            node.drain_deadline = now + self.config.decommission_timeout_seconds
        else:
            raise ClusterStateError(f"{node.node_id} is {node.state.value}; it cannot be scaled in now")
        pool.target = max(0.0, pool.target - node.weight)

    def _check_launch(self) -> None:
        if self.state not in (ClusterState.STARTING, ClusterState.BOOTSTRAPPING) or self._termination is not None:
            return
        masters = [n for n in self.nodes.values() if n.role == "MASTER" and not n.virtual]
        if not masters:
            return
        workers = [(n.role, n.state) for n in self.nodes.values() if n.at_launch and n.role != "MASTER"]
        outcome = launch_outcome(
            masters[0].state,
            workers,
            tolerance=self.config.bootstrap_failure_tolerance,
            need_core=self.hdfs is not None,
        )
        if outcome.status == "failed":
            self._request_termination(_R.BOOTSTRAP_FAILURE, outcome.reason)
        elif outcome.status == "ready":
            if self.state == ClusterState.STARTING:
                self._move_cluster(ClusterState.BOOTSTRAPPING, "instances provisioned")
            self._move_cluster(
                ClusterState.WAITING if self.queue.idle else ClusterState.RUNNING,
                f"bootstrap complete: {outcome.reason}",
            )

    def _request_termination(self, reason: ClusterStateChangeReason, detail: str) -> None:
        if self._termination is not None or self.machine.terminal:
            return
        self._termination = reason
        self.state_reason = reason
        self.state_detail = detail
        self._move_cluster(ClusterState.TERMINATING, f"{reason.value}: {detail}")
        self._master_ready.set()  # release provisioning workers waiting for the master

    def _finish_termination(self) -> None:
        if threading.current_thread().name.startswith(self._provision_prefix):
            return  # a provisioning worker cannot wait for itself; the loop or the caller finishes
        with self._lock:
            if self._finishing or self._termination is None:
                return
            self._finishing = True
            self.queue.cancel_all(self.clock(), f"cluster terminating ({self._termination.value})")
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            try:
                self.provider.shutdown()
            except Exception:
                log.exception("cluster %s: provider shutdown failed", self.id)
            for node in self.nodes.values():
                if not node.machine.terminal:
                    self._move_node(node, NodeState.TERMINATED, "cluster terminated")
            reason = self._termination
            final = ClusterState.TERMINATED_WITH_ERRORS if reason in ERROR_REASONS else ClusterState.TERMINATED
            self._move_cluster(final, f"{reason.value}: {self.state_detail}")
            self._stop.set()
            report = self.cost_report()
            (self.dir / "cost.txt").write_text(report.to_text() + "\n", encoding="utf-8")
            (self.dir / "cost.json").write_text(json.dumps(report.rows(), indent=1), encoding="utf-8")
        self._write_state()
        self._finished.set()

    def _write_state(self) -> None:
        try:
            data = self.describe()
            target = self.dir / "state.json"
            tmp = target.with_name(f"state.{os.getpid()}.{threading.get_ident()}.tmp")  # writers race: one each
            tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            log.warning("cluster %s: could not write state.json", self.id, exc_info=True)

    def _run_step(self, step: Step) -> StepHandle:
        return self.provider.run_step(
            step.step_id, step.spec.script, list(step.spec.args), dict(step.spec.spark_conf), step.log_dir
        )

    # -- provisioning (runs in the executor) ---------------------------------------------------------------

    def _provision(self, node_id: str) -> None:
        try:
            self._provision_node(node_id)
        except Exception as exc:
            log.exception("cluster %s node %s: provisioning crashed", self.id, node_id)
            with self._lock:
                node = self.nodes[node_id]
                if not node.machine.terminal:
                    self._node_start_failed(node, f"internal error: {exc}", bootstrap=False)
        with self._lock:
            if not self._finishing:
                self._write_state()  # readers of state.json see a node (or the launch) finish at once

    def _provision_node(self, node_id: str) -> None:
        with self._lock:
            node = self.nodes[node_id]
            if node.state != NodeState.REQUESTED:
                return
            if self._termination is not None:
                self._move_node(node, NodeState.TERMINATED, "request cancelled: cluster terminating")
                return
            self._move_node(node, NodeState.PROVISIONING, "instance launching")
        if node.role != "MASTER":
            while not self._master_ready.wait(0.1):
                if self._termination is not None:
                    break
        with self._lock:
            if self._termination is not None or self._master_failed or not node.in_state(NodeState.PROVISIONING):
                if not node.machine.terminal:
                    self._move_node(node, NodeState.TERMINATED, "cancelled: cluster terminating")
                return
            self._move_node(node, NodeState.BOOTSTRAPPING, "instance up, running bootstrap actions")
            if node.role == "MASTER" and not node.virtual and self.state == ClusterState.STARTING:
                self._move_cluster(ClusterState.BOOTSTRAPPING, "master provisioned, running bootstrap actions")
            context = NodeContext(
                self.id, node.node_id, node.role, node.instance_type, node.market, self.dir / "nodes" / node.node_id
            )
        try:
            run_bootstrap_actions(
                self.bootstrap_actions,
                context,
                runner=self.bootstrap_runner,
                timeout=self.config.bootstrap_timeout_seconds,
            )
        except BootstrapError as exc:
            with self._lock:
                self._node_start_failed(node, f"bootstrap action {exc.action} failed: {exc.reason}", bootstrap=True)
            return
        with self._lock:
            if not node.in_state(NodeState.BOOTSTRAPPING) or self._termination is not None:
                if not node.machine.terminal:
                    self._move_node(node, NodeState.TERMINATED, "cancelled: cluster terminating")
                return
        try:
            if not node.virtual:
                if node.role == "MASTER":
                    self.provider.start(node.spec)
                else:
                    self.provider.add_node(node.spec)
        except Exception as exc:
            with self._lock:
                self._node_start_failed(node, f"provider could not start the node: {exc}", bootstrap=False)
            return
        with self._lock:
            if not node.in_state(NodeState.BOOTSTRAPPING) or self._termination is not None:
                if not node.machine.terminal:
                    self._move_node(node, NodeState.TERMINATED, "cancelled: cluster terminating")
                if self._termination is None:
                    self._safe_remove(node, graceful=False)
                return
            self._move_node(node, NodeState.RUNNING, "bootstrap complete, node joined")
            node.last_busy_at = self.clock()
            self.pools[node.pool].consecutive_failures = 0
            if node.role == "CORE" and self.hdfs is not None:
                self.hdfs.add_datanode(node.node_id, self.catalog[node.instance_type].storage_bytes)
            if node.role == "MASTER" and not node.virtual:
                self._master_ready.set()
            self._check_launch()

    def _node_start_failed(self, node: Node, reason: str, *, bootstrap: bool) -> None:
        node.failure = reason
        self._move_node(node, NodeState.TERMINATED, reason)
        pool = self.pools[node.pool]
        pool.consecutive_failures += 1
        if pool.role != "MASTER" and pool.consecutive_failures >= MAX_CONSECUTIVE_FAILURES and not pool.suspended:
            pool.suspended = True
            self.events.record(
                EntityKind.GROUP,
                pool.name,
                "SUSPENDED",
                f"{pool.consecutive_failures} nodes in a row failed to start; resize the group to resume",
                time=self.clock(),
            )
        if node.role == "MASTER" and not node.virtual:
            self._master_failed = True
            self._master_ready.set()
            self._request_termination(_R.BOOTSTRAP_FAILURE if bootstrap else _R.INTERNAL_ERROR, reason)
        else:
            self._check_launch()
