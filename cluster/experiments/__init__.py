"""Declarative scaling experiments: run every point on a simulated cluster, record results in the lake.

``lakeforge experiment run FILE`` (:mod:`cluster.experiments.cli`) or, from Python::

    spec = load_experiment("experiment.yaml")
    runner = ExperimentRunner(spec, ResultsTable(catalog, spec.results_table), context, launch, catalog_uri)
    runner.run()
"""

from cluster.experiments.results import ResultsTable, RunResult
from cluster.experiments.runner import ExperimentRunner, Progress
from cluster.experiments.spec import ExperimentSpec, Point, cluster_config, expand, load_experiment, parse_experiment
from cluster.experiments.workloads import WORKLOADS, WorkloadContext

__all__ = [
    "WORKLOADS",
    "ExperimentRunner",
    "ExperimentSpec",
    "Point",
    "Progress",
    "ResultsTable",
    "RunResult",
    "WorkloadContext",
    "cluster_config",
    "expand",
    "load_experiment",
    "parse_experiment",
]
