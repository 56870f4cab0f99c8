"""Glue scripts written exactly as AWS Glue users write them (``tests/jobs/glue_samples/``: the
join-and-relationalize pattern, a Glue Studio-generated script, the resolve-choice/data-cleaning pattern),
run unmodified with plain ``spark-submit`` against crawled catalog tables, their output checked."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from catalog.client import LakeClient
from catalog.server import CatalogServer
from jobs.crawler import crawl
from jobs.glue import jdbc
from tests.jobs.submit_helpers import read_json_lines, run_glue_script

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SAMPLES = Path(__file__).parent / "glue_samples"


def _write_lines(path: Path, records: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


# ---------------------------------------------------------------------------------------------------------
# join and relationalize
# ---------------------------------------------------------------------------------------------------------

PERSONS = [
    {
        "id": "p1",
        "name": "Ann Arbor",
        "given_name": "Ann",
        "family_name": "Arbor",
        "gender": "female",
        "birth_date": "1960-01-02",
        "contact_details": [{"type": "twitter", "value": "@ann"}, {"type": "fax", "value": "555-1"}],
        "identifiers": [{"scheme": "wikidata", "identifier": "Q1"}],
    },
    {
        "id": "p2",
        "name": "Bo Brook",
        "given_name": "Bo",
        "family_name": "Brook",
        "gender": "male",
        "birth_date": "1971-03-04",
        "contact_details": [{"type": "phone", "value": "555-2"}],
        "identifiers": [{"scheme": "wikidata", "identifier": "Q2"}],
    },
    {
        "id": "p3",
        "name": "Cy Cole",
        "given_name": "Cy",
        "family_name": "Cole",
        "gender": "male",
        "birth_date": "1955-05-06",
        "contact_details": [],
        "identifiers": [{"scheme": "wikidata", "identifier": "Q3"}, {"scheme": "bioguide", "identifier": "C0003"}],
    },
    {
        "id": "p4",
        "name": "Di Dale",
        "given_name": "Di",
        "family_name": "Dale",
        "gender": "female",
        "birth_date": "1980-07-08",
        "identifiers": [{"scheme": "wikidata", "identifier": "Q4"}],
    },
]
MEMBERSHIPS = [
    {
        "person_id": "p1",
        "organization_id": "o1",
        "role": "member",
        "start_date": "2015-01-03",
        "legislative_period_id": 114,
    },
    {
        "person_id": "p1",
        "organization_id": "o1",
        "role": "member",
        "start_date": "2017-01-03",
        "legislative_period_id": 115,
    },
    {
        "person_id": "p2",
        "organization_id": "o2",
        "role": "member",
        "start_date": "2017-01-03",
        "legislative_period_id": 115,
    },
    {
        "person_id": "p3",
        "organization_id": "o1",
        "role": "leader",
        "start_date": "2015-01-03",
        "legislative_period_id": 114,
    },
    {
        "person_id": "p4",
        "organization_id": "o2",
        "role": "member",
        "start_date": "2019-01-03",
        "legislative_period_id": 116,
    },
    {
        "person_id": "p9",
        "organization_id": "o1",
        "role": "member",
        "start_date": "2019-01-03",
        "legislative_period_id": 116,
    },
    {
        "person_id": "p2",
        "organization_id": "o9",
        "role": "member",
        "start_date": "2019-01-03",
        "legislative_period_id": 116,
    },
]
ORGANIZATIONS = [
    {"id": "o1", "name": "Senate", "classification": "upper", "seats": 100,
     "other_names": [{"name": "upper house"}], "identifiers": [{"scheme": "x", "identifier": "1"}]},
    {"id": "o2", "name": "House", "classification": "lower", "seats": 435,
     "other_names": [{"name": "lower house"}], "identifiers": [{"scheme": "x", "identifier": "2"}]},
    {"id": "o3", "name": "Court", "classification": "judicial", "seats": 9,
     "other_names": [], "identifiers": []},
]  # fmt: skip


def test_join_and_relationalize_sample(server: CatalogServer, tmp_path: Path) -> None:
    home = tmp_path / "lake"
    root = home / "s3"
    base = root / "glue-datasets" / "us-legislators"
    _write_lines(base / "persons_json" / "persons.json", PERSONS)
    _write_lines(base / "memberships_json" / "memberships.json", MEMBERSHIPS)
    _write_lines(base / "organizations_json" / "organizations.json", ORGANIZATIONS)
    with LakeClient(server.uri) as lake:
        report = crawl("s3://glue-datasets/us-legislators", "legislators", client=lake, object_store_root=root)
    assert sorted(report.tables_created) == ["memberships_json", "organizations_json", "persons_json"]
    warehouse = tmp_path / "warehouse.db"
    jdbc.register_connection("warehouse", f"jdbc:sqlite:{warehouse}", path=home / "glue-connections.json")

    output = run_glue_script(
        SAMPLES / "legislators_history.py",
        ["--JOB_NAME", "legislators_history", "--output_dir", "s3://glue-sample-target/output-dir",
         "--TempDir", "s3://glue-sample-target/temp-dir/"],
        home=home,
        catalog_uri=server.uri,
        cwd=tmp_path,
    )  # fmt: skip
    assert "persons: 4, memberships: 7, orgs: 3" in output and "history: 5 records" in output
    assert "|-- contact_details: array" in output

    out = root / "glue-sample-target" / "output-dir"
    history = pq.read_table(out / "legislator_history").to_pylist()
    assert sorted((h["id"], h["org_name"], h["legislative_period_id"]) for h in history) == [
        ("p1", "Senate", 114),
        ("p1", "Senate", 115),
        ("p2", "House", 115),
        ("p3", "Senate", 114),
        ("p4", "House", 116),
    ]
    assert not {"person_id", "org_id", "other_names"} & set(history[0])
    assert len(list((out / "legislator_single").glob("part-*.parquet"))) == 1
    assert pq.read_table(out / "legislator_single").num_rows == 5
    assert sorted(p.name for p in (out / "legislator_part").iterdir() if p.is_dir()) == [
        "org_name=House",
        "org_name=Senate",
    ]

    with sqlite3.connect(warehouse) as db:
        tables = sorted(r[0] for r in db.execute("select name from sqlite_master where type = 'table'"))
        assert tables == ["hist_root", "hist_root_contact_details", "hist_root_identifiers"]
        assert db.execute("select count(*) from hist_root").fetchone() == (5,)
        contacts = db.execute(
            'select r.id, r.legislative_period_id, c."index", c."contact_details.val.type", '
            'c."contact_details.val.value" from hist_root r join hist_root_contact_details c '
            "on r.contact_details = c.id order by 1, 2, 3"
        ).fetchall()
        assert contacts == [
            ("p1", 114, 0, "twitter", "@ann"),
            ("p1", 114, 1, "fax", "555-1"),
            ("p1", 115, 0, "twitter", "@ann"),
            ("p1", 115, 1, "fax", "555-1"),
            ("p2", 115, 0, "phone", "555-2"),
        ]
        ids = db.execute(
            'select r.id, c."identifiers.val.identifier" from hist_root r join hist_root_identifiers c '
            "on r.identifiers = c.id order by 1, 2"
        ).fetchall()
        assert ids == [("p1", "Q1"), ("p1", "Q1"), ("p2", "Q2"), ("p3", "C0003"), ("p3", "Q3"), ("p4", "Q4")]


# ---------------------------------------------------------------------------------------------------------
# a Glue Studio script
# ---------------------------------------------------------------------------------------------------------


def _click(click_id: str, user: int, country: str, page: str, duration: Any, day: str) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "user": {"id": user, "country": country},
        "page": page,
        "duration_ms": duration,
        "event_date": f"2026-11-0{day}",
    }


CLICKS = [
    _click("k1", 1, "de", "/home", 1200, "1"),
    _click("k2", 2, "fr", "/cart", 350.5, "1"),
    _click("k2", 2, "fr", "/cart", 350.5, "1"),  # a duplicate
    _click("k3", 1, "de", "/home", "800", "2"),  # a string: duration_ms is a choice of int, double, string
    _click("k4", 3, "us", "/home", 0, "2"),
    _click("k5", 3, "us", "/cart", None, "2"),
    '{"click_id": "k6", "user": {"id": 4, "country": "jp"}, "page": "/home", "duration_ms": 10',
    _click("k7", 4, "jp", "/help", 90, "2"),
]


def test_glue_studio_generated_script(server: CatalogServer, tmp_path: Path) -> None:
    home = tmp_path / "lake"
    root = home / "s3"
    _write_lines(root / "studio-landing" / "clicks" / "2026" / "11" / "clicks.json", CLICKS)
    output = run_glue_script(
        SAMPLES / "studio_clicks.py", ["--JOB_NAME", "studio_clicks"], home=home, catalog_uri=server.uri, cwd=tmp_path
    )
    assert "Traceback" not in output

    curated = root / "studio-curated" / "clicks"
    assert sorted(p.name for p in curated.iterdir() if p.is_dir()) == ["event_date=2026-11-01", "event_date=2026-11-02"]
    rows = sorted(pq.read_table(curated).to_pylist(), key=lambda r: r["click_id"])
    # duplicates dropped, non-positive and null durations filtered, the malformed line left out, countries upper-cased
    assert [
        (r["click_id"], r["user_id"], r["country"], r["page"], r["duration_ms"], str(r["event_date"])) for r in rows
    ] == [
        ("k1", 1, "DE", "/home", 1200.0, "2026-11-01"),
        ("k2", 2, "FR", "/cart", 350.5, "2026-11-01"),
        ("k3", 1, "DE", "/home", 800.0, "2026-11-02"),
        ("k7", 4, "JP", "/help", 90.0, "2026-11-02"),
    ]
    assert all(r["ingested_at"] is not None for r in rows)
    with LakeClient(server.uri) as lake:
        dataset = lake.get_dataset("studio_db", "clicks_curated")
        assert dataset.definition.location == "s3://studio-curated/clicks/"
        assert [k.name for k in dataset.definition.partition_keys] == ["event_date"]
        assert "ingested_at" in [c.name for c in dataset.definition.columns]
        assert sorted(p.values[0] for p in lake.list_partitions("studio_db", "clicks_curated")) == [
            "2026-11-01",
            "2026-11-02",
        ]
    stats = {r["page"]: r for r in read_json_lines(root / "studio-curated" / "page_stats")}
    assert {p: (r["avg(duration_ms)"], r["count(click_id)"]) for p, r in stats.items()} == {
        "/home": (1000.0, 2),
        "/cart": (350.5, 1),
        "/help": (90.0, 1),
    }


# ---------------------------------------------------------------------------------------------------------
# resolve choice and data cleaning
# ---------------------------------------------------------------------------------------------------------

MEDICARE_HEADER = (
    "drg definition,provider id,provider name,provider city,provider state,total discharges,"
    "average covered charges,average total payments"
)
MEDICARE = [
    f"039 - EXTRACRANIAL PROCEDURES W/O CC/MCC,{10000 + i},HOSPITAL {i},CITY{i},AL,{20 + i},"
    f"${30000 + i}.50,${5000 + i}.25"
    for i in range(10)
]
MEDICARE.insert(4, '057 - DEGENERATIVE NERVOUS SYSTEM,P-0042,"SAINT ANN, CLINIC",MOBILE,AL,12,$9000.00,$4000.00')
MEDICARE.insert(9, "064 - INTRACRANIAL HEMORRHAGE,X17,VALLEY CLINIC,DOTHAN,AL,14,$8000.00,$3000.00")


def test_resolve_choice_and_data_cleaning_sample(server: CatalogServer, tmp_path: Path) -> None:
    home = tmp_path / "lake"
    root = home / "s3"
    source = root / "awsglue-datasets" / "examples" / "medicare" / "Medicare_Hospital_Provider.csv"
    source.parent.mkdir(parents=True)
    source.write_text("\n".join([MEDICARE_HEADER, *MEDICARE]) + "\n")
    with LakeClient(server.uri) as lake:
        crawl("s3://awsglue-datasets/examples/medicare", "payments", client=lake, object_store_root=root)
        assert lake.get_dataset("payments", "medicare").definition.format == "csv"

    output = run_glue_script(
        SAMPLES / "medicare_cleaning.py",
        ["--JOB_NAME", "medicare", "--output_dir", "s3://glue-sample-target/medicare"],
        home=home,
        catalog_uri=server.uri,
        cwd=tmp_path,
    )
    assert "|-- provider id: choice\n|    |-- long\n|    |-- string" in output
    assert "cast nulls: 2" in output and "project nulls: 2" in output and "odd ids: ['P-0042', 'X17']" in output

    out = root / "glue-sample-target" / "medicare"
    structs = read_json_lines(out / "make_struct")
    assert len(structs) == 12
    assert sorted(json.dumps(r["provider id"], sort_keys=True) for r in structs)[-2:] == [
        '{"string": "P-0042"}',
        '{"string": "X17"}',
    ]
    assert sorted(r["provider id"]["long"] for r in structs if "long" in r["provider id"]) == list(range(10000, 10010))
    nested = sorted(read_json_lines(out / "nested"), key=lambda r: r["provider"]["id"])
    assert len(nested) == 10
    assert nested[3] == {
        "drg": "039 - EXTRACRANIAL PROCEDURES W/O CC/MCC",
        "provider": {"id": 10003, "name": "HOSPITAL 3", "city": "CITY3", "state": "AL"},
        "discharges": 23,
        "charges": {"covered": 30003.5, "total_pay": 5003.25},
    }
