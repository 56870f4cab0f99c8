"""The main pipeline (``lakeforge demo``) end to end, small: real catalog, crawler, Spark job steps, bookmarks.

The cluster runs on the test plug-in backend (in-memory nodes, each step a real ``python job.py`` process on
Spark ``local[2]``), so this checks the pipeline's own logic; the same steps on Ray are covered by
``test_cluster_on_ray.py`` and the quickstart notebook.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from catalog.settings import Settings
from cluster.lake import Lake
from cluster.pipeline import (
    RAW_DATABASE,
    RAW_TABLE,
    TARGET_DATABASE,
    TARGET_TABLE,
    PipelineError,
    PipelineOptions,
    run_demo,
)

BACKEND = "tests.cluster.cli_backend:provider"
SMALL = PipelineOptions(records=3_000, more_records=1_000, hours_per_day=2, task_nodes=1, backend=BACKEND)


@pytest.mark.spark
@pytest.mark.slow
def test_the_main_pipeline_processes_each_day_once_and_reports(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEFORGE_HOME", str(settings.home))  # the steps' object store
    out = io.StringIO()
    result = run_demo(settings, Console(file=out, width=160), SMALL)

    first, second = result.runs
    assert first.added_rows == first.landed_good > 2_800  # a few malformed lines and failed casts are left out
    assert second.added_rows == second.landed_good > 900  # the bookmark: only the second day's files
    assert result.rows_by_day == {"2026-11-01": first.added_rows, "2026-11-02": second.added_rows}
    assert result.cost is not None and result.cost.total_usd > 0
    text = out.getvalue()
    assert "second run (bookmarked: new files only)" in text and "cost of cluster" in text

    with Lake(settings) as lake:
        table = lake.catalog.load_table(f"{TARGET_DATABASE}.{TARGET_TABLE}")
        added = [s.summary["added-records"] for s in table.snapshots() if s.summary is not None]
        assert added == [str(first.added_rows), str(second.added_rows)]
        assert {f.name for f in table.spec().fields} == {"dt", "hour"}
        assert len(lake.client.list_partitions(RAW_DATABASE, RAW_TABLE)) == 4
        errors = list((settings.object_store_root / "lakeforge-demo" / "errors").rglob("*.json"))
        assert errors, "malformed lines and failed casts must become error records"

    # Running the main command again lands the next two days; the bookmarked job reads only them.
    again = run_demo(settings, Console(file=io.StringIO(), width=160), SMALL)
    third, fourth = again.runs
    assert third.added_rows == third.landed_good and fourth.added_rows == fourth.landed_good
    assert again.rows_by_day == {
        "2026-11-01": first.added_rows,
        "2026-11-02": second.added_rows,
        "2026-11-03": third.added_rows,
        "2026-11-04": fourth.added_rows,
    }  # nothing processed twice


def test_a_failing_step_stops_the_pipeline_with_its_logs_and_ends_the_cluster(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAKEFORGE_HOME", str(settings.home))
    monkeypatch.setattr("cluster.pipeline.JOBS", tmp_path / "no-jobs-here")
    with pytest.raises(PipelineError, match=r"step s-\w+ FAILED.*logs in .*/steps/s-\w+") as failure:
        run_demo(settings, Console(file=io.StringIO()), replace(SMALL, records=200, more_records=100))
    log_dir = Path(str(failure.value).rsplit("logs in ", 1)[1].strip())
    assert "no-jobs-here" in (log_dir / "stderr").read_text()
    (state,) = [json.loads(p.read_text()) for p in settings.clusters_dir.glob("j-*/state.json")]
    assert state["state"] == "TERMINATED"  # the cluster is not left running
