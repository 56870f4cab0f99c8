"""Bootstrap actions run as real (tiny) scripts in the node's directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.bootstrap import TIMEOUT_EXIT_CODE, BootstrapAction, NodeContext, run_bootstrap_actions, run_script
from cluster.errors import BootstrapError


def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext("j-1", "i-0001", "CORE", "m5.xlarge", "ON_DEMAND", tmp_path / "nodes" / "i-0001")


def test_scripts_run_in_order_with_node_facts(tmp_path: Path) -> None:
    first = tmp_path / "first.sh"
    first.write_text('echo "$LAKEFORGE_NODE_ID $LAKEFORGE_NODE_ROLE $1" > marker\n')
    second = tmp_path / "second.py"
    second.write_text(
        "import json, os\n"
        "info = json.load(open(os.environ['LAKEFORGE_INSTANCE_INFO']))\n"
        "open('second', 'w').write(str(info['isRunningDataNode']) + open('marker').read())\n"
    )
    node = ctx(tmp_path)
    actions = [BootstrapAction("first", str(first), ("hello",)), BootstrapAction("second", str(second))]
    run_bootstrap_actions(actions, node, runner=run_script, timeout=30)
    assert (node.node_dir / "marker").read_text() == "i-0001 CORE hello\n"
    assert (node.node_dir / "second").read_text() == "Truei-0001 CORE hello\n"
    info = json.loads((node.node_dir / "instance.json").read_text())
    assert info["isMaster"] is False and info["instanceRole"] == "core" and info["jobFlowId"] == "j-1"
    assert (node.node_dir / "bootstrap" / "first.log").is_file()


def test_first_failing_script_stops_the_node(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("echo broken >&2\nexit 3\n")
    never = tmp_path / "never.sh"
    never.write_text("touch ran\n")
    node = ctx(tmp_path)
    with pytest.raises(BootstrapError) as info:
        run_bootstrap_actions(
            [BootstrapAction("bad", str(bad)), BootstrapAction("never", str(never))],
            node,
            runner=run_script,
            timeout=30,
        )
    assert (info.value.node_id, info.value.action, info.value.reason) == ("i-0001", "bad", "exit code 3")
    assert "broken" in (node.node_dir / "bootstrap" / "bad.log").read_text()
    assert not (node.node_dir / "ran").exists()


def test_timeout_fails_the_node(tmp_path: Path) -> None:
    slow = tmp_path / "slow.sh"
    slow.write_text("sleep 5\n")
    node = ctx(tmp_path)
    node.node_dir.mkdir(parents=True)
    assert run_script(BootstrapAction("slow", str(slow)), node, timeout=0.2) == TIMEOUT_EXIT_CODE
    with pytest.raises(BootstrapError, match="timed out"):
        run_bootstrap_actions([BootstrapAction("slow", str(slow))], node, runner=run_script, timeout=0.2)


def test_missing_interpreter_target_is_a_bootstrap_error(tmp_path: Path) -> None:
    def runner(action: BootstrapAction, node: NodeContext, timeout: float) -> int:
        raise FileNotFoundError(action.path)

    with pytest.raises(BootstrapError, match="could not run"):
        run_bootstrap_actions([BootstrapAction("x", "/nope")], ctx(tmp_path), runner=runner, timeout=1)
