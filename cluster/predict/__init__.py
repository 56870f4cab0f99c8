"""Prediction beyond one machine: Spark event-log traces, the Ernest model, and a cluster simulation.

* :mod:`cluster.predict.traces` reads Spark event logs into typed job traces.
* :mod:`cluster.predict.ernest` fits Ernest's runtime model (NNLS) and evaluates it on held-out runs.
* :mod:`cluster.predict.model` reduces a trace to a replayable workload (stage DAG, task times, driver time).
* :mod:`cluster.predict.simulate` replays it on a simulated EMR cluster of any size, with Spot interruptions,
  managed scaling and cost, Monte-Carlo over seeds.
* :mod:`cluster.predict.calibrate` measures real local runs (``spark-submit``) and
  :mod:`cluster.predict.validate` reports the prediction error of both models on held-out runs.
"""
