"""Every notebook runs top to bottom with small parameters, makes its plots, and is stored without outputs."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from catalog.server import CatalogServer

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_the_notebooks_exist() -> None:
    assert {"quickstart.ipynb", "scaling.ipynb", "catalog.ipynb"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs must be cleared"


@pytest.fixture
def notebook_env(server: CatalogServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Kernel environment: small parameters, the session's catalog, a private lake home."""
    env = {
        "LAKEFORGE_NB_SMALL": "1",
        "LAKEFORGE_HOME": str(tmp_path / "lake"),
        "LAKEFORGE_CATALOG_URI": server.uri,
        "LAKEFORGE_NB_NAMESPACE": f"nb_{uuid.uuid4().hex[:8]}",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run_notebook(name: str, workdir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def outputs_of(nb: nbformat.NotebookNode, kind: str) -> list[dict[str, object]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == kind]


def images(nb: nbformat.NotebookNode) -> int:
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {}))


def text_of(nb: nbformat.NotebookNode) -> str:
    parts: list[str] = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        for o in c.outputs:
            parts.append(str(o.get("text", "")))
            parts.append(str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.spark
@pytest.mark.slow
def test_catalog_notebook(notebook_env: dict[str, str], tmp_path: Path) -> None:
    nb = run_notebook("catalog.ipynb", tmp_path)
    assert not outputs_of(nb, "error")
    assert images(nb) >= 2
    text = text_of(nb)
    assert "JP rows right after the delete: 0" in text
    assert "'channel'" in text  # the evolved schema lists the new column
    assert "dt = 2026-11-01 and hour < 02 -> [['2026-11-01', '00'], ['2026-11-01', '01']]" in text


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.ray
def test_scaling_notebook(notebook_env: dict[str, str], tmp_path: Path) -> None:
    nb = run_notebook("scaling.ipynb", tmp_path)
    assert not outputs_of(nb, "error")
    assert images(nb) >= 5  # speedup/cost, interruptions, markets, measured vs predicted, big clusters
    text = text_of(nb)
    # 2 shapes without interruptions + 1 interrupted: every run finished and its output matched its input
    assert "3 runs recorded, 3 ok and correct" in text
    assert "pyiceberg scan: 3 ok rows of these experiments" in text
    assert "core node + 1 Spot task node(s):" in text
    assert re.search(r"Spot rate 6/h: \d+ nodes interrupted", text)
    assert "node-seconds x prices reproduce the recorded costs: True" in text
    assert re.search(r"spot-1 at 0/h: .* Spot saved \d+% of the step's cost", text)
    assert re.search(r"mean relative error of the Spark jobs' runtime over 3 held-out runs: \d+\.\d%", text)
    assert re.search(r"mean relative error of the whole step over 3 held-out runs: \d+\.\d%", text)
    assert "Ernest: 2 runs fit exactly" in text
    assert re.search(r"predicted, 200 Spot task nodes: .* speedup \d+\.\dx", text)
    assert re.search(r"3 cluster\(s\) launched here: (j-\w+ TERMINATED(, )?){3}", text)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.ray
def test_quickstart_notebook(notebook_env: dict[str, str], tmp_path: Path) -> None:
    nb = run_notebook("quickstart.ipynb", tmp_path)
    assert not outputs_of(nb, "error")
    assert images(nb) >= 2  # requests per hour, cost per node
    text = text_of(nb)
    landed = re.search(r"landed ([\d,]+) good and ([\d,]+) malformed lines; (\d+) partitions registered", text)
    assert landed and int(landed.group(3)) == 4
    assert re.search(r"s-\w+ COMPLETED .* logs:", text)
    valid = re.search(r"valid records landed: (\d+) then (\d+)", text)
    counts = re.search(r"rows after the first run: ([\d,]+); now: ([\d,]+)", text)
    assert valid and counts
    first, second = int(valid.group(1)), int(valid.group(2))
    # time travel sees the first run's rows; the bookmarked rerun added only the second day's
    assert [int(g.replace(",", "")) for g in counts.groups()] == [first, first + second]
    assert "TERMINATED" in text
