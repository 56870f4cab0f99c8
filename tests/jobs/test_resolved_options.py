"""``getResolvedOptions``: Glue 5's argparse rules, the options Glue always defines, bookmark rules and
errors."""

from __future__ import annotations

import pytest

from jobs.glue import runtime_args
from jobs.glue.utils import GlueArgumentError, getResolvedOptions

ALWAYS = {
    "JOB_ID": None,
    "JOB_RUN_ID": None,
    "SECURITY_CONFIGURATION": None,
    "encryption_type": None,
    "enable_data_lineage": None,
    "RedshiftTempDir": None,
    "TempDir": None,
    "job_bookmark_from": None,
    "job_bookmark_to": None,
    "job_bookmark_option": "job-bookmark-disable",
}


def test_space_and_equals_forms_and_the_keys_glue_always_adds() -> None:
    args = getResolvedOptions(["job.py", "--JOB_NAME", "nightly", "--input=s3://b/in"], ["JOB_NAME", "input"])
    assert args == {**ALWAYS, "JOB_NAME": "nightly", "input": "s3://b/in"}


def test_values_are_strings_and_may_look_like_anything_but_options() -> None:
    args = getResolvedOptions(
        ["x", "--n", "42", "--neg", "-5", "--empty", "", "--eq=a=b", "--spaces", "a b"],
        ["n", "neg", "empty", "eq", "spaces"],
    )
    assert (args["n"], args["neg"], args["empty"], args["eq"], args["spaces"]) == ("42", "-5", "", "a=b", "a b")


def test_unknown_arguments_are_ignored() -> None:
    argv = ["x", "--enable-metrics", "true", "--JOB_NAME", "j", "stray", "--extra-py-files", "s3://b/x.zip", "-v"]
    args = getResolvedOptions(argv, ["JOB_NAME"])
    assert args["JOB_NAME"] == "j"
    assert "enable_metrics" not in args and "extra_py_files" not in args


def test_only_argv_after_the_script_name_is_parsed() -> None:
    with pytest.raises(GlueArgumentError, match="required: --JOB_NAME"):
        getResolvedOptions(["--JOB_NAME", "j"], ["JOB_NAME"])


def test_missing_required_arguments_are_named() -> None:
    with pytest.raises(GlueArgumentError, match=r"the following arguments are required: --input, --output"):
        getResolvedOptions(["x", "--JOB_NAME", "j"], ["JOB_NAME", "input", "output"])


def test_option_without_value_is_an_error() -> None:
    with pytest.raises(GlueArgumentError, match="argument --input: expected one argument"):
        getResolvedOptions(["x", "--input"], ["input"])
    with pytest.raises(GlueArgumentError, match="argument --input: expected one argument"):
        getResolvedOptions(["x", "--input", "--JOB_NAME", "j"], ["input", "JOB_NAME"])


def test_dashes_become_underscores_in_keys() -> None:
    args = getResolvedOptions(["x", "--target-table", "t", "--source_db", "d"], ["target-table", "source_db"])
    assert args["target_table"] == "t" and args["source_db"] == "d"
    assert "target-table" not in args


def test_unambiguous_prefixes_match_as_in_glue_5() -> None:
    args = getResolvedOptions(["x", "--inp", "a", "--out=b", "--Temp", "s3://t/"], ["input", "output"])
    assert (args["input"], args["output"], args["TempDir"]) == ("a", "b", "s3://t/")


def test_ambiguous_prefix_is_an_error() -> None:
    with pytest.raises(GlueArgumentError, match="ambiguous option: --JOB could match"):
        getResolvedOptions(["x", "--JOB", "v", "--JOB_NAME", "j"], ["JOB_NAME"])


def test_glue_6_behaviour_without_abbreviations() -> None:
    with pytest.raises(GlueArgumentError, match="required: --input"):
        getResolvedOptions(["x", "--inp", "a"], ["input"], allow_abbrev=False)


def test_last_occurrence_wins() -> None:
    assert getResolvedOptions(["x", "--a", "1", "--a", "2"], ["a"])["a"] == "2"


def test_temp_dirs_mirror_each_other_and_may_be_requested() -> None:
    assert getResolvedOptions(["x", "--TempDir", "s3://t/"], [])["RedshiftTempDir"] == "s3://t/"
    assert getResolvedOptions(["x", "--RedshiftTempDir", "s3://r/"], [])["TempDir"] == "s3://r/"
    both = getResolvedOptions(["x", "--TempDir", "s3://t/", "--RedshiftTempDir", "s3://r/"], ["TempDir"])
    assert (both["TempDir"], both["RedshiftTempDir"]) == ("s3://t/", "s3://r/")
    assert getResolvedOptions(["x", "--RedshiftTempDir", "s3://r/"], ["TempDir"])["TempDir"] == "s3://r/"
    with pytest.raises(GlueArgumentError, match="required: --TempDir"):
        getResolvedOptions(["x"], ["TempDir"])


def test_glue_passes_its_ids_and_they_are_returned() -> None:
    argv = ["x", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_2", "--SECURITY_CONFIGURATION", "sec",
            "--encryption-type", "sse-s3", "--enable-data-lineage", "true", "--JOB_NAME", "n"]  # fmt: skip
    args = getResolvedOptions(argv, ["JOB_NAME"])
    assert (args["JOB_ID"], args["JOB_RUN_ID"], args["SECURITY_CONFIGURATION"]) == ("j_1", "jr_2", "sec")
    assert (args["encryption_type"], args["enable_data_lineage"]) == ("sse-s3", "true")


@pytest.mark.parametrize(
    "name",
    [
        "job-bookmark-option",
        "job_bookmark_option",
        "continuation-option",
        "job-bookmark-from",
        "job-bookmark-to",
        "JOB_ID",
        "--JOB_RUN_ID",
        "SECURITY_CONFIGURATION",
        "encryption-type",
        "enable_data_lineage",
    ],
)
def test_reserved_names_cannot_be_requested(name: str) -> None:
    with pytest.raises(GlueArgumentError, match="Using reserved arguments") as excinfo:
        getResolvedOptions(["x"], ["JOB_NAME", name])
    assert isinstance(excinfo.value, RuntimeError)  # Glue raises RuntimeError for these


def test_job_name_is_not_reserved() -> None:
    assert getResolvedOptions(["x", "--JOB_NAME", "j"], ["JOB_NAME"])["JOB_NAME"] == "j"


def test_requesting_a_name_twice_or_a_string_is_an_error() -> None:
    with pytest.raises(GlueArgumentError, match="requested twice"):
        getResolvedOptions(["x", "--a", "1"], ["a", "a"])
    with pytest.raises(GlueArgumentError, match="list of argument names"):
        getResolvedOptions(["x", "--JOB_NAME", "j"], "JOB_NAME")  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable"])
def test_bookmark_option_is_passed_through(option: str) -> None:
    assert getResolvedOptions(["x", "--job-bookmark-option", option], [])["job_bookmark_option"] == option


def test_bookmark_option_must_be_a_known_value() -> None:
    with pytest.raises(GlueArgumentError, match="invalid choice: 'job-bookmark-on'"):
        getResolvedOptions(["x", "--job-bookmark-option", "job-bookmark-on"], [])


@pytest.mark.parametrize(
    ("legacy", "mapped"),
    [
        ("continuation-enabled", "job-bookmark-enable"),
        ("continuation-readonly", "job-bookmark-pause"),
        ("continuation-ignore", "job-bookmark-disable"),
    ],
)
def test_legacy_continuation_option_maps_to_bookmarks(legacy: str, mapped: str) -> None:
    args = getResolvedOptions(["x", "--continuation-option", legacy], [])
    assert args["job_bookmark_option"] == mapped
    assert "continuation_option" not in args


def test_bookmark_option_wins_over_continuation_option() -> None:
    argv = ["x", "--continuation-option", "continuation-enabled", "--job-bookmark-option", "job-bookmark-disable"]
    assert getResolvedOptions(argv, [])["job_bookmark_option"] == "job-bookmark-disable"


def test_pause_with_a_full_range() -> None:
    argv = ["x", "--job-bookmark-option", "job-bookmark-pause", "--job-bookmark-from", "jr_a", "--job-bookmark-to",
            "jr_b"]  # fmt: skip
    args = getResolvedOptions(argv, [])
    assert (args["job_bookmark_from"], args["job_bookmark_to"]) == ("jr_a", "jr_b")


def test_pause_without_a_range_is_fine() -> None:
    assert getResolvedOptions(["x", "--job-bookmark-option", "job-bookmark-pause"], [])["job_bookmark_from"] is None


@pytest.mark.parametrize(("given", "missing"), [("from", "--job-bookmark-to"), ("to", "--job-bookmark-from")])
def test_pause_with_half_a_range_is_an_error(given: str, missing: str) -> None:
    argv = ["x", "--job-bookmark-option", "job-bookmark-pause", f"--job-bookmark-{given}", "jr_a"]
    with pytest.raises(GlueArgumentError, match=f"Missing option or value for {missing}"):
        getResolvedOptions(argv, [])


@pytest.mark.parametrize("option", [None, "job-bookmark-enable", "job-bookmark-disable"])
def test_range_only_with_pause(option: str | None) -> None:
    argv = ["x", "--job-bookmark-from", "jr_a", "--job-bookmark-to", "jr_b"]
    if option:
        argv += ["--job-bookmark-option", option]
    with pytest.raises(GlueArgumentError, match="only allowed with --job-bookmark-option job-bookmark-pause"):
        getResolvedOptions(argv, [])


def test_result_is_recorded_for_the_runtime() -> None:
    args = getResolvedOptions(["x", "--JOB_NAME", "recorded", "--TempDir", "s3://tmp/"], ["JOB_NAME"])
    assert runtime_args.last_args() == args
    assert runtime_args.last_args()["TempDir"] == "s3://tmp/"
    runtime_args.last_args()["TempDir"] = "changed"  # a copy: callers cannot change the record
    assert runtime_args.last_args()["TempDir"] == "s3://tmp/"


def test_failed_parse_does_not_replace_the_record() -> None:
    getResolvedOptions(["x", "--JOB_NAME", "kept"], ["JOB_NAME"])
    with pytest.raises(GlueArgumentError):
        getResolvedOptions(["x"], ["JOB_NAME"])
    assert runtime_args.last_args()["JOB_NAME"] == "kept"


def test_no_help_option_that_would_exit_the_driver() -> None:
    assert getResolvedOptions(["x", "--help", "--h", "-h", "--JOB_NAME", "j"], ["JOB_NAME"])["JOB_NAME"] == "j"
