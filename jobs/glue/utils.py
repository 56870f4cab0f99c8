"""Job arguments the way Glue 5 parses them (served to scripts as ``awsglue.utils``).

``getResolvedOptions(sys.argv, ["JOB_NAME", "input"])`` parses ``sys.argv[1:]`` with argparse:

* every requested name becomes a required ``--NAME`` option taking one string value (``--NAME value``
  or ``--NAME=value``); dict keys are argparse ``dest`` names, so dashes become underscores;
* arguments nobody asked for are ignored (``parse_known_args``);
* unambiguous prefixes of option names are accepted (``--inp x`` for ``--input``), as in Glue 5.x;
  ``allow_abbrev=False`` gives Glue 6's stricter behaviour, and an ambiguous prefix is an error;
* the options Glue always defines are in the result, ``None`` when absent: ``JOB_ID``, ``JOB_RUN_ID``,
  ``SECURITY_CONFIGURATION``, ``encryption_type``, ``enable_data_lineage``, ``RedshiftTempDir`` and
  ``TempDir`` (each mirrors the other when only one is given), ``job_bookmark_from`` and
  ``job_bookmark_to``; ``job_bookmark_option`` defaults to ``job-bookmark-disable``, and the legacy
  ``--continuation-option continuation-enabled|readonly|ignore`` maps to enable, pause and disable;
* ``--job-bookmark-from``/``--job-bookmark-to`` must come together and only with
  ``job-bookmark-pause``;
* requesting a reserved name (``job-bookmark-option``, ``continuation-option``, ``job-bookmark-from``,
  ``job-bookmark-to``, ``JOB_ID``, ``JOB_RUN_ID``, ``SECURITY_CONFIGURATION``, ``encryption-type``,
  ``enable-data-lineage``, in either dash or underscore spelling) is an error; ``JOB_NAME`` is not
  reserved, and ``TempDir``/``RedshiftTempDir`` may be requested (then one of them is required).

Every error raises :class:`GlueArgumentError` with argparse's message. Glue raises ``RuntimeError`` for
the reserved-name and bookmark-range errors; ``GlueArgumentError`` subclasses ``RuntimeError`` so such
handlers still catch them. Differences kept on purpose: there is no ``--help`` (a job has no terminal to
print it to, and Glue's would exit the driver), and requested names may carry leading dashes.

The parsed dict is also recorded with :func:`jobs.glue.runtime_args.set_last_args` (Glue's
``_global_args``), where ``Relationalize`` finds ``TempDir``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any, NoReturn

from jobs.glue import runtime_args

log = logging.getLogger(__name__)

BOOKMARK_OPTIONS = ("job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable")
CONTINUATION_OPTIONS = {
    "continuation-enabled": "job-bookmark-enable",
    "continuation-readonly": "job-bookmark-pause",
    "continuation-ignore": "job-bookmark-disable",
}
DEFAULT_BOOKMARK_OPTION = "job-bookmark-disable"
#: The options Glue defines on every parse (optional; ``None`` when absent).
ALWAYS_DEFINED = (
    "JOB_ID",
    "JOB_RUN_ID",
    "SECURITY_CONFIGURATION",
    "encryption-type",
    "enable-data-lineage",
    "RedshiftTempDir",
    "TempDir",
)
#: Names a script may not request (compared by argparse ``dest``: dashes and underscores alike).
RESERVED = (
    "job-bookmark-option",
    "continuation-option",
    "job-bookmark-from",
    "job-bookmark-to",
    "JOB_ID",
    "JOB_RUN_ID",
    "SECURITY_CONFIGURATION",
    "encryption-type",
    "enable-data-lineage",
)
_TEMP_DIRS = ("TempDir", "RedshiftTempDir")


class GlueArgumentError(RuntimeError):
    """Job arguments that do not satisfy the script's ``getResolvedOptions`` call."""


class GlueArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise :class:`GlueArgumentError` instead of exiting the driver."""

    def error(self, message: str) -> NoReturn:
        raise GlueArgumentError(message)


def _dest(name: str) -> str:
    return name.lstrip("-").replace("-", "_")


def getResolvedOptions(  # noqa: N802 - Glue's public name
    args: Sequence[str], options: Sequence[str], allow_abbrev: bool = True
) -> dict[str, Any]:
    """Parse ``args[1:]`` (pass ``sys.argv``) for the required ``options``; see the module docstring."""
    if isinstance(options, str):
        raise GlueArgumentError(f"options must be a list of argument names, not the string {options!r}")
    requested = [str(o).lstrip("-") for o in options]
    for name in requested:
        if not name:
            raise GlueArgumentError("An empty argument name was requested")
    reserved_dests = {_dest(r) for r in RESERVED}
    clashes = [n for n in requested if _dest(n) in reserved_dests]
    if clashes:
        raise GlueArgumentError(
            f"Using reserved arguments {', '.join('--' + n for n in clashes)}: Glue defines these itself; "
            f"read them from the returned dict ({', '.join(sorted({_dest(n) for n in clashes}))})"
        )
    seen: set[str] = set()
    for name in requested:
        if _dest(name) in seen:
            raise GlueArgumentError(f"argument --{name} is requested twice")
        seen.add(_dest(name))

    parser = GlueArgumentParser(add_help=False, allow_abbrev=allow_abbrev, prog="glue-job")
    parser.add_argument("--job-bookmark-option", choices=BOOKMARK_OPTIONS, required=False)
    parser.add_argument("--continuation-option", choices=tuple(CONTINUATION_OPTIONS), required=False)
    parser.add_argument("--job-bookmark-from", required=False)
    parser.add_argument("--job-bookmark-to", required=False)
    for name in ALWAYS_DEFINED:
        parser.add_argument(f"--{name}", required=False)
    temp_requested = [n for n in requested if n in _TEMP_DIRS]
    for name in requested:
        if name not in _TEMP_DIRS:
            parser.add_argument(f"--{name}", required=True)

    parsed, _unknown = parser.parse_known_args(list(args[1:]))
    result: dict[str, Any] = vars(parsed)

    if result.get("TempDir") is None and result.get("RedshiftTempDir") is not None:
        result["TempDir"] = result["RedshiftTempDir"]
    elif result.get("RedshiftTempDir") is None and result.get("TempDir") is not None:
        result["RedshiftTempDir"] = result["TempDir"]
    missing_temp = [n for n in temp_requested if result.get(n) is None]
    if missing_temp:
        raise GlueArgumentError(f"the following arguments are required: {', '.join('--' + n for n in missing_temp)}")

    continuation = result.pop("continuation_option", None)
    if result.get("job_bookmark_option") is None:
        result["job_bookmark_option"] = (
            CONTINUATION_OPTIONS[continuation] if continuation is not None else DEFAULT_BOOKMARK_OPTION
        )
    given = [k for k in ("job_bookmark_from", "job_bookmark_to") if result.get(k) is not None]
    if result["job_bookmark_option"] == "job-bookmark-pause":
        if len(given) == 1:
            absent = "--job-bookmark-to" if given[0] == "job_bookmark_from" else "--job-bookmark-from"
            raise GlueArgumentError(
                f"Missing option or value for {absent}: --job-bookmark-from and --job-bookmark-to go together"
            )
    elif given:
        raise GlueArgumentError(
            f"Invalid option(s) {', '.join('--' + g.replace('_', '-') for g in given)}: a bookmark range "
            f"(--job-bookmark-from/--job-bookmark-to) is only allowed with --job-bookmark-option "
            f"job-bookmark-pause, not {result['job_bookmark_option']}"
        )

    runtime_args.set_last_args(result)
    log.debug("resolved job arguments: %s", sorted(result))
    return result
