"""Glue's ``Job``: init/commit lifecycle, run ids, and the bookmark-store seam with the in-memory store
(the catalog-backed store is tested on Spark in ``test_bookmarks.py``)."""

from __future__ import annotations

import pytest

from jobs.glue.job import BookmarkStore, InMemoryBookmarkStore, Job, JobError
from jobs.glue.utils import getResolvedOptions


def test_init_commit_and_identity() -> None:
    job = Job(None)
    assert not job.isInitialized() and job.runId is None
    args = getResolvedOptions(["s.py", "--JOB_NAME", "nightly", "--JOB_RUN_ID", "jr_abc"], ["JOB_NAME"])
    job.init(args["JOB_NAME"], args)
    assert job.isInitialized() and job.job_name == "nightly" and job.runId == "jr_abc"
    assert job.bookmark_option == "job-bookmark-disable"
    job.commit()
    assert job.committed


def test_run_id_is_generated_like_glue() -> None:
    first, second = Job(None).init("j"), Job(None).init("j")
    assert first.runId and first.runId.startswith("jr_") and len(first.runId) == 67
    assert first.runId != second.runId


def test_out_of_order_use_is_an_error() -> None:
    with pytest.raises(JobError, match=r"commit\(\) before Job.init"):
        Job(None).commit()
    job = Job(None).init("j")
    with pytest.raises(JobError, match="already initialized"):
        job.init("j")
    with pytest.raises(JobError, match="needs a job name"):
        Job(None).init("")
    with pytest.raises(JobError, match="Unknown job_bookmark_option"):
        Job(None).init("j", {"job_bookmark_option": "on"})


def test_state_is_saved_at_commit_only_when_bookmarks_are_enabled() -> None:
    store = InMemoryBookmarkStore()
    assert isinstance(store, BookmarkStore)
    enabled = Job(None, store).init("etl", {"job_bookmark_option": "job-bookmark-enable"})
    enabled.update_state("src", {"files": ["a"]})
    assert store.load("etl") == {}  # nothing is saved before commit
    enabled.commit()
    assert store.load("etl") == {"src": {"files": ["a"]}}
    assert store.saved == [("etl", enabled.runId)]

    resumed = Job(None, store).init("etl", {"job_bookmark_option": "job-bookmark-enable"})
    assert resumed.state("src") == {"files": ["a"]}
    paused = Job(None, store).init("etl", {"job_bookmark_option": "job-bookmark-pause"})
    assert paused.state("src") == {"files": ["a"]}
    paused.update_state("src", {"files": ["b"]})
    paused.commit()
    assert store.load("etl") == {"src": {"files": ["a"]}}  # pause reads state but never saves it
    disabled = Job(None, store).init("etl", {"job_bookmark_option": "job-bookmark-disable"})
    assert disabled.state("src") is None  # disable processes everything

    failed = Job(None, store).init("etl", {"job_bookmark_option": "job-bookmark-enable"})
    failed.update_state("src", {"files": ["c"]})  # the run dies before commit
    assert store.load("etl") == {"src": {"files": ["a"]}}


def test_the_default_store_does_not_persist_across_processes() -> None:
    from jobs.glue import job as job_module

    assert isinstance(job_module.default_bookmark_store(), InMemoryBookmarkStore)
    assert "NOT persistent" in (InMemoryBookmarkStore.__doc__ or "")


def test_a_default_store_set_for_the_process_is_used_by_later_jobs() -> None:
    from jobs.glue.job import default_bookmark_store, set_default_bookmark_store

    store = InMemoryBookmarkStore()
    set_default_bookmark_store(store)
    try:
        assert default_bookmark_store() is store
        job = Job(None).init("proc", {"job_bookmark_option": "job-bookmark-enable"})
        job.update_state("src", 1)
        job.commit()
        assert store.load("proc") == {"src": 1}
    finally:
        set_default_bookmark_store(None)
    assert default_bookmark_store() is not store


def test_ranges_need_run_history_and_a_second_commit_is_a_no_op() -> None:
    store = InMemoryBookmarkStore()
    pause = {"job_bookmark_option": "job-bookmark-pause", "job_bookmark_from": "jr_a", "job_bookmark_to": "jr_b"}
    with pytest.raises(JobError, match="need a bookmark store that keeps run history"):
        Job(None, store).init("etl", pause)
    with pytest.raises(JobError, match="go together"):
        Job(None, store).init("etl", {"job_bookmark_option": "job-bookmark-pause", "job_bookmark_to": "jr_b"})
    job = Job(None, store).init("etl", {"job_bookmark_option": "job-bookmark-enable"})
    job.update_state("src", 1)
    job.commit()
    job.update_state("src", 2)
    job.commit()  # a second commit (a try/finally in a script) is a no-op, as in Glue
    assert store.load("etl") == {"src": 1} and len(store.saved) == 1
