"""The project's Glue job scripts (``jobs/*_job.py``) run with plain ``spark-submit`` against the session's
catalog server, their output checked exactly: rows, types, partitions, error records, and that every input
record ends up either in the output or among the error records."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.client import LakeClient
from catalog.server import CatalogServer
from jobs.crawler import crawl
from jobs.datagen import generate_access_logs
from tests.jobs.submit_helpers import REPO, read_json_lines, run_glue_script

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _catalog(server: CatalogServer) -> Any:
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog("lake", uri=server.uri)


# ---------------------------------------------------------------------------------------------------------
# access_logs_job.py
# ---------------------------------------------------------------------------------------------------------


def _expected_access_logs(root: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[str]]:
    """From the raw files, independently of the job: (good records by request id, the reason each failed
    cast fails by request id, the malformed lines)."""
    good: dict[str, dict[str, Any]] = {}
    failing: dict[str, str] = {}
    malformed: list[str] = []
    for path in sorted(root.rglob("*.json")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                malformed.append(line)
                continue
            assert isinstance(record, dict), line
            latency = record["latency_ms"]
            try:
                float(latency)
            except ValueError:
                failing[record["request_id"]] = f"latency_ms '{latency}' is not double"
                continue
            good[record["request_id"]] = record
    return good, failing, malformed


def _table_rows(server: CatalogServer, ident: str) -> tuple[pa.Table, Any]:
    table = _catalog(server).load_table(ident)
    return table.scan().to_arrow(), table


def test_access_logs_job_from_a_crawled_dataset_then_from_files(server: CatalogServer, tmp_path: Path) -> None:
    home = tmp_path / "lake"
    root = home / "s3"
    summary = generate_access_logs(
        "s3://landing/access_logs", 1800, days=2, hours_per_day=3, seed=11, bad_fraction=0.03, object_store_root=root
    )
    raw_dir = root / "landing" / "access_logs"
    expected, failing, malformed = _expected_access_logs(raw_dir)
    assert (len(expected) + len(failing), len(malformed)) == (summary.good, summary.bad)
    assert len(failing) == summary.latency_uncastable > 0 and summary.bad > 0 and summary.status_strings > 0
    # A file the predicate must prune: gzip by its name, plain text inside, so reading it fails the job.
    poison = raw_dir / "dt=2026-11-01" / "hour=00" / "late.json.gz"
    poison.write_text((raw_dir / "dt=2026-11-01" / "hour=00" / "part-11.json").read_text().splitlines()[0] + "\n")
    raw_db, db = f"raw_{uuid.uuid4().hex[:8]}", f"web_{uuid.uuid4().hex[:8]}"
    with LakeClient(server.uri) as lake:
        report = crawl("s3://landing/access_logs", raw_db, client=lake, object_store_root=root)
        assert report.tables_created == ["access_logs"] and report.partitions_added == 6

    script = REPO / "jobs" / "access_logs_job.py"
    common = ["--JOB_NAME", "access_logs", "--target_database", db, "--target_table", "access_logs"]
    out1 = run_glue_script(
        script,
        [
            *common,
            "--source_database", raw_db,
            "--source_table", "access_logs",
            "--push_down_predicate", "dt = '2026-11-02'",
            "--errors_path", "s3://lake/errors/run1",
        ],
        home=home,
        catalog_uri=server.uri,
        cwd=tmp_path,
    )  # fmt: skip
    day2 = [p for p in summary.partitions if p.dt == "2026-11-02"]
    day2_appended = sum(p.good - p.latency_uncastable for p in day2)
    assert (
        f"appended {day2_appended} records to lake.{db}.access_logs; {sum(p.bad for p in day2)} malformed lines "
        f"and {sum(p.latency_uncastable for p in day2)} failed casts" in out1
    )
    rows, table = _table_rows(server, f"{db}.access_logs")
    assert rows.num_rows == day2_appended
    assert {r.isoformat() for r in rows.column("dt").to_pylist()} == {"2026-11-02"}

    poison.unlink()  # run 2 reads day 1 from the files themselves
    run_glue_script(
        script,
        [*common, "--source_path", "s3://landing/access_logs/dt=2026-11-01/", "--errors_path", "s3://lake/errors/run2"],
        home=home,
        catalog_uri=server.uri,
        cwd=tmp_path,
    )
    rows, table = _table_rows(server, f"{db}.access_logs")
    assert [f.name for f in table.spec().fields] == ["dt", "hour"]
    assert len(table.snapshots()) == 2
    types = {f.name: f.type for f in rows.schema}
    assert types["status"] == pa.int32() and types["hour"] == pa.int32() and types["tag_count"] == pa.int32()
    assert types["latency_ms"] == pa.float64() and types["bytes"] == pa.int64() and types["dt"] == pa.date32()
    assert pa.types.is_timestamp(types["ts"]) and types["tags"].value_type == pa.string()

    # every good record exactly once, typed and derived
    by_id = {r["request_id"]: r for r in rows.to_pylist()}
    assert len(by_id) == rows.num_rows == len(expected)
    assert by_id.keys() == expected.keys()
    for request_id, raw in expected.items():
        row = by_id[request_id]
        ts = dt.datetime.fromisoformat(raw["ts"].replace("Z", "+00:00"))
        assert (row["dt"], row["hour"]) == (ts.date(), ts.hour)
        assert row["status"] == int(raw["status"]) and row["status_class"] == f"{int(raw['status']) // 100}xx"
        assert row["latency_ms"] == float(raw["latency_ms"]) and row["bytes"] == raw["bytes"]
        assert row["user_id"] == (raw["user"]["id"] if raw["user"] else None)
        assert row["country"] == (raw["user"]["geo"]["country"] if raw["user"] else None)
        assert row["tags"] == raw["tags"] and row["tag_count"] == len(raw["tags"])
        assert row["referrer"] == raw.get("referrer") and row["client_ip"] == raw["ip"]
        assert row["is_bot"] == any(b in raw["user_agent"].lower() for b in ("bot", "curl", "httpx", "okhttp"))
    per_partition = Counter((r["dt"].isoformat(), f"{r['hour']:02d}") for r in by_id.values())
    assert per_partition == {(p.dt, p.hour): p.good - p.latency_uncastable for p in summary.partitions}

    # error records: the malformed lines verbatim, the failed casts with their reason
    errors = read_json_lines(root / "lake" / "errors")
    kinds = Counter(e["kind"] for e in errors)
    assert kinds == {"malformed": len(malformed), "cast": len(failing)}
    assert sorted(e["record"] for e in errors if e["kind"] == "malformed") == sorted(malformed)
    assert all(e["message"].startswith("Malformed JSON record") for e in errors if e["kind"] == "malformed")
    casts = {json.loads(e["record"])["request_id"]: e for e in errors if e["kind"] == "cast"}
    assert {k: e["message"] for k, e in casts.items()} == failing
    assert {e["stage"] for e in casts.values()} == {"typed"}


# ---------------------------------------------------------------------------------------------------------
# nested_join_job.py
# ---------------------------------------------------------------------------------------------------------

CUSTOMERS = [
    {
        "customer_id": "c1",
        "name": {"first": "Ann", "last": "Lee"},
        "address": {"city": "Berlin", "country": "DE"},
        "phones": [{"type": "mobile", "number": "+49 1"}, {"type": "work", "number": "+49 2"}],
        "tier": "gold",
        "internal_notes": "vip",
    },
    {
        "customer_id": "c2",
        "name": {"first": "Bob", "last": "Ng"},
        "address": {"city": "Paris", "country": "FR"},
        "phones": [],
        "tier": "silver",
        "created_by": "import",
    },
    {
        "customer_id": "c3",
        "name": {"first": "Cy", "last": "Oz"},
        "address": {"city": "Austin", "country": "US"},
        "phones": [{"type": "home", "number": "+1 3"}],
        "tier": "gold",
    },
]


def _orders() -> list[dict[str, Any]]:
    orders = []
    for i in range(1, 11):
        items = [
            {
                "sku": f"SKU-{i}-{k}",
                "qty": k + 1,
                "price": round(9.99 * (k + 1), 2),
                "options": ["gift"] if k == 0 else [],
            }
            for k in range(i % 3 + 1)
        ]
        orders.append(
            {
                "order_id": i,
                "customer_id": f"c{(i - 1) % 3 + 1}" if i < 10 else "c9",  # c9: no such customer
                "ordered_at": f"2026-11-0{i % 3 + 1}T10:00:00Z",
                "shipping": {
                    "method": "air" if i % 2 else "ground",
                    "address": {"city": f"City{i}", "zip": f"{10000 + i}"},
                },
                "items": items,
            }
        )
    return orders


def test_nested_join_job_relationalizes_into_iceberg_tables(server: CatalogServer, tmp_path: Path) -> None:
    home = tmp_path / "lake"
    landing = home / "s3" / "landing"
    orders = _orders()
    for name, records in (("orders", orders[:6]), ("orders", orders[6:]), ("customers", CUSTOMERS)):
        folder = landing / name
        folder.mkdir(parents=True, exist_ok=True)
        part = len(list(folder.iterdir()))
        (folder / f"part-{part}.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    db = f"sales_{uuid.uuid4().hex[:8]}"
    output = run_glue_script(
        REPO / "jobs" / "nested_join_job.py",
        [
            "--JOB_NAME", "orders_relational",
            "--orders_path", "s3://landing/orders/",
            "--customers_path", "s3://landing/customers/",
            "--target_database", db,
            "--TempDir", "s3://lake/tmp/",
        ],
        home=home,
        catalog_uri=server.uri,
        cwd=tmp_path,
    )  # fmt: skip
    joined = [o for o in orders if o["customer_id"] != "c9"]
    customers = {c["customer_id"]: c for c in CUSTOMERS}
    n_items = sum(len(o["items"]) for o in joined)
    n_phones = sum(len(customers[o["customer_id"]]["phones"]) for o in joined)
    assert (
        f"appended order_root={len(joined)}, order_root_items={n_items}, order_root_items_val_options={len(joined)}, "
        f"order_root_phones={n_phones} in {db}" in output
    )
    catalog = _catalog(server)
    assert sorted(t[-1] for t in catalog.list_tables(db)) == [
        "order_root",
        "order_root_items",
        "order_root_items_val_options",
        "order_root_phones",
    ]
    root = {r["order_id"]: r for r in catalog.load_table(f"{db}.order_root").scan().to_arrow().to_pylist()}
    items = catalog.load_table(f"{db}.order_root_items").scan().to_arrow().to_pylist()
    options = catalog.load_table(f"{db}.order_root_items_val_options").scan().to_arrow().to_pylist()
    phones = catalog.load_table(f"{db}.order_root_phones").scan().to_arrow().to_pylist()

    assert sorted(root) == [o["order_id"] for o in joined]  # the order of an unknown customer is left out
    some = root[4]
    assert "internal_notes" not in some and "created_by" not in some and "cust_id" not in some
    assert (some["customer_id"], some["name_first"], some["address_city"], some["tier"]) == (
        "c1",
        "Ann",
        "Berlin",
        "gold",
    )
    assert (some["shipping_method"], some["shipping_address_city"], some["shipping_address_zip"]) == (
        "ground",
        "City4",
        "10004",
    )
    for order in joined:
        row = root[order["order_id"]]
        mine = sorted((r for r in items if r["id"] == row["items"]), key=lambda r: r["index"])
        assert [(r["index"], r["items_val_sku"], r["items_val_qty"], r["items_val_price"]) for r in mine] == [
            (k, it["sku"], it["qty"], it["price"]) for k, it in enumerate(order["items"])
        ]
        gifts = [o for r in mine for o in options if o["id"] == r["items_val_options"]]
        assert [(g["index"], g["items_val_options_val"]) for g in gifts] == [(0, "gift")]
        numbers = sorted((p["index"], p["phones_val_number"]) for p in phones if p["id"] == row["phones"])
        assert numbers == [(k, ph["number"]) for k, ph in enumerate(customers[order["customer_id"]]["phones"])]
    assert len(items) == n_items and len(options) == len(joined) and len(phones) == n_phones


# ---------------------------------------------------------------------------------------------------------
# csv_to_parquet_job.py
# ---------------------------------------------------------------------------------------------------------

SALES_HEADER = "sale_id,store_id,sold_on,region,amount,quantity,notes"
SALES_1 = [
    "1,17,2026-11-01,eu,12.50,3,first",
    "2,17,2026-11-01,eu,7,2,",
    "3,S-20,2026-11-01,us,N/A,two,bad amount",
    '4,21,2026-11-02,us,100.25,1,"quoted, with comma"',
    "5,21,2026-11-02,apac,3.5,10",  # six values: an error record
]
SALES_2 = ["6,22,2026-11-02,eu,8,4,x", "7,S-21,2026-11-03,apac,9.75,5,y"]


def test_csv_to_parquet_job_resolves_choices_and_partitions(server: CatalogServer, tmp_path: Path) -> None:
    home = tmp_path / "lake"
    landing = home / "s3" / "landing" / "sales"
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text("\n".join([SALES_HEADER, *SALES_1]) + "\n")
    (landing / "b.csv").write_text("\n".join([SALES_HEADER, *SALES_2]) + "\n")
    output = run_glue_script(
        REPO / "jobs" / "csv_to_parquet_job.py",
        [
            "--JOB_NAME", "sales_csv",
            "--source_path", "s3://landing/sales/",
            "--output_path", "s3://lake/sales_parquet/",
            "--partition_keys", "region",
            "--compression", "gzip",
            "--errors_path", "s3://lake/errors/sales/",
        ],
        home=home,
        catalog_uri=server.uri,
        cwd=tmp_path,
    )  # fmt: skip
    assert "csv_to_parquet_job: wrote 6 records" in output and "1 error records" in output
    out_dir = home / "s3" / "lake" / "sales_parquet"
    assert sorted(p.name for p in out_dir.iterdir() if p.is_dir()) == ["region=apac", "region=eu", "region=us"]
    files = sorted(out_dir.rglob("*.parquet"))
    assert files and all(pq.ParquetFile(f).metadata.row_group(0).column(0).compression == "GZIP" for f in files)
    table = pq.read_table(out_dir)
    schema = {f.name: f.type for f in table.schema}
    assert schema["sale_id"] == pa.int64() and schema["amount"] == pa.float64() and schema["quantity"] == pa.int64()
    assert schema["store_id_long"] == pa.int64() and schema["store_id_string"] == pa.string()
    assert "store_id" not in schema and schema["notes"] == pa.string()
    rows = sorted(table.to_pylist(), key=lambda r: r["sale_id"])
    assert [
        (
            r["sale_id"],
            r["store_id_long"],
            r["store_id_string"],
            str(r["region"]),
            r["amount"],
            r["quantity"],
            r["notes"],
        )
        for r in rows
    ] == [
        (1, 17, None, "eu", 12.5, 3, "first"),
        (2, 17, None, "eu", 7.0, 2, None),
        (3, None, "S-20", "us", None, None, "bad amount"),
        (4, 21, None, "us", 100.25, 1, "quoted, with comma"),
        (6, 22, None, "eu", 8.0, 4, "x"),
        (7, None, "S-21", "apac", 9.75, 5, "y"),
    ]
    errors = read_json_lines(home / "s3" / "lake" / "errors" / "sales")
    assert [(e["record"], e["message"]) for e in errors] == [(SALES_1[4], "Malformed CSV record: expected 7 columns")]
