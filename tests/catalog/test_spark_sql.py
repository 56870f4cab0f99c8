"""Spark SQL through the real catalog server: DML, DDL, evolution, time travel, maintenance."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.spark


@pytest.fixture
def db(spark) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"lake.sql_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE NAMESPACE {name}")
    yield name


def rows(spark, query: str) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return [tuple(r) for r in spark.sql(query).collect()]


def test_create_insert_merge_update_delete(spark, db: str) -> None:  # type: ignore[no-untyped-def]
    t = f"{db}.orders"
    spark.sql(f"CREATE TABLE {t} (id bigint, status string, day date) USING iceberg PARTITIONED BY (days(day))")
    spark.sql(f"INSERT INTO {t} VALUES (1, 'new', DATE'2026-01-01'), (2, 'new', DATE'2026-01-02')")
    spark.sql(
        f"""MERGE INTO {t} t USING (SELECT 2 AS id, 'paid' AS status, DATE'2026-01-02' AS day
            UNION ALL SELECT 3, 'new', DATE'2026-01-03') s ON t.id = s.id
            WHEN MATCHED THEN UPDATE SET t.status = s.status WHEN NOT MATCHED THEN INSERT *"""
    )
    spark.sql(f"UPDATE {t} SET status = 'shipped' WHERE id = 1")
    spark.sql(f"DELETE FROM {t} WHERE id = 3")
    assert rows(spark, f"SELECT id, status FROM {t} ORDER BY id") == [(1, "shipped"), (2, "paid")]
    ops = [r[0] for r in rows(spark, f"SELECT operation FROM {t}.snapshots ORDER BY committed_at")]
    assert ops[0] == "append" and len(ops) == 4
    partitions = rows(spark, f"SELECT partition.day_day FROM {t}.partitions ORDER BY 1")
    assert [str(p[0]) for p in partitions] == ["2026-01-01", "2026-01-02"]


def test_ctas_and_create_or_replace_table_as_select(spark, db: str) -> None:  # type: ignore[no-untyped-def]
    spark.sql(f"CREATE TABLE {db}.src USING iceberg AS SELECT id, id * 2 AS twice FROM range(5)")
    spark.sql(f"CREATE TABLE {db}.copy USING iceberg AS SELECT * FROM {db}.src WHERE id < 3")
    assert rows(spark, f"SELECT count(*) FROM {db}.copy") == [(3,)]
    with pytest.raises(Exception, match="already exists"):
        spark.sql(f"CREATE TABLE {db}.copy USING iceberg AS SELECT 1 AS x")
    spark.sql(f"CREATE OR REPLACE TABLE {db}.copy USING iceberg AS SELECT id FROM {db}.src")
    assert rows(spark, f"SELECT count(*) FROM {db}.copy") == [(5,)]
    assert [f.name for f in spark.table(f"{db}.copy").schema.fields] == ["id"]
    # The replaced table keeps its history: two snapshots, the current one from the replace.
    assert rows(spark, f"SELECT count(*) FROM {db}.copy.history") == [(2,)]


def test_schema_and_partition_evolution(spark, db: str) -> None:  # type: ignore[no-untyped-def]
    t = f"{db}.evolve"
    spark.sql(f"CREATE TABLE {t} (id int, name string) USING iceberg")
    spark.sql(f"INSERT INTO {t} VALUES (1, 'a')")
    spark.sql(f"ALTER TABLE {t} ADD COLUMN score double")
    spark.sql(f"ALTER TABLE {t} RENAME COLUMN name TO label")
    spark.sql(f"ALTER TABLE {t} ALTER COLUMN id TYPE bigint")
    spark.sql(f"ALTER TABLE {t} ADD PARTITION FIELD bucket(4, id)")
    spark.sql(f"INSERT INTO {t} VALUES (2, 'b', 0.5)")
    spark.sql(f"ALTER TABLE {t} DROP COLUMN score")
    assert rows(spark, f"SELECT id, label FROM {t} ORDER BY id") == [(1, "a"), (2, "b")]
    specs = rows(spark, f"SELECT DISTINCT spec_id FROM {t}.files ORDER BY 1")
    assert specs == [(0,), (1,)]
    spark.sql(f"ALTER TABLE {t} WRITE ORDERED BY id")
    spark.sql(f"ALTER TABLE {t} SET TBLPROPERTIES ('team' = 'etl')")
    props = dict(rows(spark, f"SHOW TBLPROPERTIES {t}"))
    assert props["team"] == "etl"


def test_time_travel_branches_and_tags(spark, db: str) -> None:  # type: ignore[no-untyped-def]
    t = f"{db}.tt"
    spark.sql(f"CREATE TABLE {t} (id int) USING iceberg")
    spark.sql(f"INSERT INTO {t} VALUES (1)")
    first = rows(spark, f"SELECT snapshot_id FROM {t}.snapshots")[0][0]
    spark.sql(f"INSERT INTO {t} VALUES (2)")
    assert rows(spark, f"SELECT count(*) FROM {t} VERSION AS OF {first}") == [(1,)]
    spark.sql(f"ALTER TABLE {t} CREATE TAG v1 AS OF VERSION {first}")
    spark.sql(f"ALTER TABLE {t} CREATE BRANCH dev")
    spark.sql(f"INSERT INTO {t}.branch_dev VALUES (3)")
    assert rows(spark, f"SELECT count(*) FROM {t} VERSION AS OF 'v1'") == [(1,)]
    assert rows(spark, f"SELECT count(*) FROM {t} VERSION AS OF 'dev'") == [(3,)]
    assert rows(spark, f"SELECT count(*) FROM {t}") == [(2,)]
    refs = {r[0]: r[1] for r in rows(spark, f"SELECT name, type FROM {t}.refs")}
    assert refs == {"main": "BRANCH", "dev": "BRANCH", "v1": "TAG"}
    spark.sql(f"CALL lake.system.rollback_to_snapshot('{t.removeprefix('lake.')}', {first})")
    assert rows(spark, f"SELECT count(*) FROM {t}") == [(1,)]


def test_maintenance_procedures(spark, db: str) -> None:  # type: ignore[no-untyped-def]
    t = f"{db}.maint"
    ident = t.removeprefix("lake.")
    spark.sql(f"CREATE TABLE {t} (id int) USING iceberg")
    for i in range(4):
        spark.sql(f"INSERT INTO {t} VALUES ({i})")
    assert rows(spark, f"SELECT count(*) FROM {t}.files") == [(4,)]
    result = spark.sql(
        f"CALL lake.system.rewrite_data_files(table => '{ident}', options => map('min-input-files', '2'))"
    ).collect()[0]
    assert result["rewritten_data_files_count"] == 4
    assert rows(spark, f"SELECT count(*) FROM {t}.files") == [(1,)]
    spark.sql(
        f"CALL lake.system.expire_snapshots(table => '{ident}', older_than => TIMESTAMP '2999-01-01', retain_last => 1)"
    )
    assert rows(spark, f"SELECT count(*) FROM {t}.snapshots") == [(1,)]
    assert rows(spark, f"SELECT sum(id) FROM {t}") == [(6,)]


def test_rename_and_drop_purge(spark, db: str) -> None:  # type: ignore[no-untyped-def]
    spark.sql(f"CREATE TABLE {db}.old (id int) USING iceberg")
    spark.sql(f"INSERT INTO {db}.old VALUES (1)")
    # Spark resolves the target inside the source's catalog: no catalog prefix.
    spark.sql(f"ALTER TABLE {db}.old RENAME TO {db.removeprefix('lake.')}.new")
    assert rows(spark, f"SELECT * FROM {db}.new") == [(1,)]
    assert [r[1] for r in rows(spark, f"SHOW TABLES IN {db}")] == ["new"]
    location = rows(spark, f"SELECT file_path FROM {db}.new.files")[0][0]
    data_file = Path(urlparse(location).path)
    assert data_file.exists()
    spark.sql(f"DROP TABLE {db}.new PURGE")
    assert not data_file.exists()
    assert rows(spark, f"SHOW TABLES IN {db}") == []
    spark.sql(f"DROP NAMESPACE {db}")


def test_metadata_tables_of_missing_table_fail_cleanly(spark, db: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="(?i)table or view.*cannot be found|TABLE_OR_VIEW_NOT_FOUND"):
        spark.sql(f"SELECT * FROM {db}.missing.snapshots").collect()
