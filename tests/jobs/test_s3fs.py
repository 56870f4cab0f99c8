"""``s3://`` in Spark: lakeforge's Hadoop FileSystem maps ``s3://bucket/key`` to ``<root>/bucket/key``,
for DataFrame reads and writes, Hadoop's FileSystem API, FileContext (streaming checkpoints) and
Iceberg tables located in the object store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError

from tests.jobs.glue_io_fixtures import *  # noqa: F403 - the fixtures

pytestmark = pytest.mark.spark


def _fs(spark, uri: str):  # type: ignore[no-untyped-def]
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def _error(exc: BaseException) -> str:
    """The Java exception's class and message (PySpark converts some Java exceptions to its own)."""
    if isinstance(exc, Py4JJavaError):
        return str(exc.java_exception.getClass().getName()) + ": " + str(exc.java_exception.getMessage())
    return f"{type(exc).__name__}: {exc}"


def test_partitioned_parquet_round_trip_lands_under_the_root(spark, lake_root: Path, bucket: str) -> None:
    df = spark.range(12).selectExpr("id", "cast(id % 3 as int) as k", "concat('v', id) as s")
    df.write.partitionBy("k").parquet(f"s3://{bucket}/tables/t")

    back = spark.read.parquet(f"s3://{bucket}/tables/t")
    assert sorted((r.id, r.k, r.s) for r in back.collect()) == [(i, i % 3, f"v{i}") for i in range(12)]
    assert back.where("k = 1").count() == 4
    local = lake_root / bucket / "tables" / "t"
    assert {p.name for p in local.iterdir() if p.is_dir()} == {"k=0", "k=1", "k=2"}
    assert (local / "_SUCCESS").is_file()
    assert list((local / "k=1").glob("part-*.parquet"))
    files = back.inputFiles()
    assert files and all(f.startswith(f"s3://{bucket}/tables/t/k=") for f in files)
    # no in-flight objects or Hadoop checksum files are left behind
    assert not [p for p in local.rglob("*") if p.name.startswith(".")]


def test_json_through_s3a_and_s3n_schemes_share_the_bucket(spark, lake_root: Path, bucket: str) -> None:
    spark.createDataFrame([(1, "a"), (2, "b")], "id long, name string").write.json(f"s3a://{bucket}/j")
    assert sorted(r.name for r in spark.read.json(f"s3n://{bucket}/j").collect()) == ["a", "b"]
    assert sorted(r.id for r in spark.read.json(f"s3://{bucket}/j").collect()) == [1, 2]
    lines = [json.loads(line) for f in (lake_root / bucket / "j").glob("part-*.json") for line in f.read_text().split()]
    assert sorted(d["id"] for d in lines) == [1, 2]


def test_reads_files_placed_directly_in_the_root(spark, lake_root: Path, bucket: str) -> None:
    landing = lake_root / bucket / "landing" / "2024"
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text("x,y\n1,2\n3,4\n")
    df = spark.read.option("header", "true").csv(f"s3://{bucket}/landing/2024/a.csv")
    assert [(r.x, r.y) for r in df.collect()] == [("1", "2"), ("3", "4")]


def test_listing_status_and_glob_keep_the_s3_scheme(spark, lake_root: Path, bucket: str) -> None:
    base = lake_root / bucket / "list"
    (base / "sub").mkdir(parents=True)
    (base / "a.txt").write_text("aaa")
    (base / "sub" / "b.txt").write_text("b")
    fs, path = _fs(spark, f"s3://{bucket}/list")
    statuses = fs.listStatus(path)
    listed = {str(s.getPath()): (s.isDirectory(), s.getLen()) for s in statuses}
    assert listed == {f"s3://{bucket}/list/a.txt": (False, 3), f"s3://{bucket}/list/sub": (True, 0)}
    status = fs.getFileStatus(spark.sparkContext._jvm.org.apache.hadoop.fs.Path(f"s3://{bucket}/list/a.txt"))
    assert status.isFile() and status.getLen() == 3
    globbed = fs.globStatus(spark.sparkContext._jvm.org.apache.hadoop.fs.Path(f"s3://{bucket}/list/*/*.txt"))
    assert [str(s.getPath()) for s in globbed] == [f"s3://{bucket}/list/sub/b.txt"]
    recursive = fs.listFiles(path, True)
    names = []
    while recursive.hasNext():
        names.append(str(recursive.next().getPath()))
    assert sorted(names) == [f"s3://{bucket}/list/a.txt", f"s3://{bucket}/list/sub/b.txt"]
    assert str(fs.getUri()) == f"s3://{bucket}"


def test_filesystem_create_open_rename_delete_semantics(spark, lake_root: Path, bucket: str) -> None:
    jvm = spark.sparkContext._jvm
    P = jvm.org.apache.hadoop.fs.Path  # noqa: N806
    fs, _ = _fs(spark, f"s3://{bucket}/")
    local = lake_root / bucket

    out = fs.create(P(f"s3://{bucket}/dir/obj.bin"))
    out.write(bytearray(b"hello world"))
    out.hflush()
    # an object appears when its stream is closed, as an S3 PUT does
    assert not fs.exists(P(f"s3://{bucket}/dir/obj.bin"))
    assert not (local / "dir" / "obj.bin").exists()
    out.close()
    assert (local / "dir" / "obj.bin").read_bytes() == b"hello world"

    stream = fs.open(P(f"s3://{bucket}/dir/obj.bin"))
    stream.seek(6)
    assert bytes(stream.read() for _ in range(5)) == b"world"  # byte by byte: py4j copies byte arrays
    assert stream.getPos() == 11 and stream.read() == -1
    stream.seek(0)
    assert stream.readByte() == ord("h") and stream.available() == 10
    stream.close()

    with pytest.raises(Exception) as exists:
        fs.create(P(f"s3://{bucket}/dir/obj.bin"), False)
    assert "File already exists" in _error(exists.value)

    assert fs.mkdirs(P(f"s3://{bucket}/target"))
    assert fs.rename(P(f"s3://{bucket}/dir/obj.bin"), P(f"s3://{bucket}/target"))  # into an existing directory
    assert (local / "target" / "obj.bin").read_bytes() == b"hello world"
    assert not fs.rename(P(f"s3://{bucket}/missing"), P(f"s3://{bucket}/x"))
    assert fs.rename(P(f"s3://{bucket}/target/obj.bin"), P(f"s3://{bucket}/new/parent/renamed.bin"))
    assert (local / "new" / "parent" / "renamed.bin").exists()

    with pytest.raises(Exception) as not_empty:
        fs.delete(P(f"s3://{bucket}/new"), False)
    assert "is not empty" in _error(not_empty.value).lower()
    assert fs.delete(P(f"s3://{bucket}/new"), True)
    assert not (local / "new").exists()
    assert not fs.delete(P(f"s3://{bucket}/new"), True)

    with pytest.raises(Exception) as missing:
        fs.getFileStatus(P(f"s3://{bucket}/nope"))
    assert "No such file or directory" in _error(missing.value)
    with pytest.raises(Exception) as append:
        fs.append(P(f"s3://{bucket}/target"))
    assert "Append is not supported" in _error(append.value)
    with pytest.raises(Exception) as escape:
        fs.getFileStatus(P(f"s3://{bucket}/a/../../etc"))
    assert "'..' is not allowed" in _error(escape.value)


def test_root_comes_from_hadoop_conf_before_the_system_property(spark, tmp_path: Path) -> None:
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(spark.sparkContext._jsc.hadoopConfiguration())
    conf.set("fs.lakeforge.root", str(tmp_path / "other-root"))
    path = jvm.org.apache.hadoop.fs.Path("s3://elsewhere/k/file.txt")
    fs = path.getFileSystem(conf)
    assert str(fs.getBucketDirectory()) == str(tmp_path / "other-root" / "elsewhere")
    out = fs.create(path)
    out.write(bytearray(b"x"))
    out.close()
    assert (tmp_path / "other-root" / "elsewhere" / "k" / "file.txt").read_text() == "x"
    conf.set("fs.lakeforge.root", "relative/root")
    with pytest.raises(Exception) as relative:
        path.getFileSystem(conf)
    assert "is not absolute" in _error(relative.value)


def test_structured_streaming_checkpoints_in_the_object_store(spark, lake_root: Path, bucket: str) -> None:
    landing = lake_root / bucket / "landing"
    landing.mkdir(parents=True)
    (landing / "one.json").write_text('{"id": 1}\n{"id": 2}\n')
    query = (
        spark.readStream.schema("id long")
        .json(f"s3://{bucket}/landing")
        .writeStream.format("parquet")
        .option("path", f"s3://{bucket}/out")
        .option("checkpointLocation", f"s3://{bucket}/chk")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    assert query.exception() is None
    assert sorted(r.id for r in spark.read.parquet(f"s3://{bucket}/out").collect()) == [1, 2]
    assert (lake_root / bucket / "chk" / "offsets" / "0").is_file()
    assert (lake_root / bucket / "chk" / "commits" / "0").is_file()
    assert (lake_root / bucket / "out" / "_spark_metadata" / "0").is_file()


def test_iceberg_table_located_in_the_object_store(spark, lake_root: Path) -> None:
    ns = f"s3ns_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE NAMESPACE lake.{ns}")
    spark.sql(
        f"CREATE TABLE lake.{ns}.t (id bigint, day string) USING iceberg PARTITIONED BY (day) "
        f"LOCATION 's3://warehouse-bucket/{ns}/t'"
    )
    spark.sql(f"INSERT INTO lake.{ns}.t VALUES (1, 'a'), (2, 'b'), (3, 'a')")
    spark.sql(f"DELETE FROM lake.{ns}.t WHERE id = 2")
    assert sorted(r.id for r in spark.table(f"lake.{ns}.t").collect()) == [1, 3]
    table_dir = lake_root / "warehouse-bucket" / ns / "t"
    data_files = list((table_dir / "data").rglob("*.parquet"))
    assert data_files and all("day=" in str(p) for p in data_files)
    assert list((table_dir / "metadata").glob("*.metadata.json"))
    assert list((table_dir / "metadata").glob("snap-*.avro"))
    files = [r.file_path for r in spark.sql(f"SELECT file_path FROM lake.{ns}.t.files").collect()]
    assert files and all(f.startswith(f"s3://warehouse-bucket/{ns}/t/data/") for f in files)


@pytest.mark.slow
def test_setup_compiles_the_filesystem_jar_only_when_the_sources_change(tmp_path: Path) -> None:
    import zipfile

    from jobs import sparkenv

    jar = sparkenv.build_s3fs_jar(sparkenv.spark_home(), out_dir=tmp_path)
    with zipfile.ZipFile(jar) as zf:
        names = set(zf.namelist())
    assert {"lakeforge/fs/LakeS3FileSystem.class", "lakeforge/fs/LakeS3Fs.class", sparkenv.S3FS_STAMP} <= names
    built = jar.stat().st_mtime_ns
    assert sparkenv.build_s3fs_jar(sparkenv.spark_home(), out_dir=tmp_path) == jar
    assert jar.stat().st_mtime_ns == built  # current: not rebuilt
    stamp = sparkenv._jar_stamp(jar)
    jar.write_bytes(b"")  # a broken or stale jar (its stamp no longer matches the sources) is rebuilt
    sparkenv.build_s3fs_jar(sparkenv.spark_home(), out_dir=tmp_path)
    assert sparkenv._jar_stamp(jar) == stamp
    linked = sparkenv.spark_home() / "jars" / sparkenv.S3FS_JAR
    assert linked.is_symlink() and sparkenv._jar_stamp(linked) == sparkenv._jar_stamp(jar)
    defaults = sparkenv.SPARK_DEFAULTS.read_text()
    for scheme in ("s3", "s3a", "s3n"):
        assert f"spark.hadoop.fs.{scheme}.impl" in defaults
        assert f"spark.hadoop.fs.AbstractFileSystem.{scheme}.impl" in defaults
    env_script = (sparkenv.spark_home() / "conf" / "spark-env.sh").read_text()
    assert 'LAKEFORGE_S3_ROOT="${LAKEFORGE_S3_ROOT:-${LAKEFORGE_HOME:-' in env_script
