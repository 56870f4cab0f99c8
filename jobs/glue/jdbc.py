"""JDBC sources and sinks of Glue jobs, and the lake's named JDBC connections (Glue's catalog Connections).

Drivers: PostgreSQL and SQLite, from Debian's ``libpostgresql-jdbc-java`` and
``libxerial-sqlite-jdbc-java`` (setup links them into pyspark's ``jars/``). Other vendors' URLs are
accepted when their driver jar is on Spark's classpath.

**Named connections** (``from_jdbc_conf``, ``extract_jdbc_conf``, ``connectionName``) live in a JSON file:
``$LAKEFORGE_GLUE_CONNECTIONS`` if set, else ``<lake home>/glue-connections.json``::

    {"connections": {
        "warehouse-pg": {"url": "jdbc:postgresql://127.0.0.1:5432/dw", "user": "etl", "password": "..."},
        "local-sqlite": {"url": "jdbc:sqlite:/data/app.db"}
    }}

Add one with :func:`register_connection` (or ``GlueContext.register_connection``), which writes the file
atomically. Like a Glue Connection, the URL may omit the database; ``connection_options["database"]``
then supplies it.

**Parallel reads** (Glue's ``hashfield``/``hashexpression``/``hashpartitions``, default 7 partitions): each
Spark partition reads the rows where ``abs(mod(<hash>, n)) = i`` (rows whose hash is NULL go to partition
0), so the partitions are disjoint and complete. ``hashexpression`` is used as given (it must be an
integer SQL expression); ``hashfield`` names a column, hashed with ``hashtext`` on PostgreSQL, and on
SQLite (which has no hash function) with its integer value plus its text length and last character code.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

DRIVERS = {
    "postgresql": "org.postgresql.Driver",
    "sqlite": "org.sqlite.JDBC",
    "mysql": "com.mysql.cj.jdbc.Driver",
    "sqlserver": "com.microsoft.sqlserver.jdbc.SQLServerDriver",
    "oracle": "oracle.jdbc.OracleDriver",
    "redshift": "com.amazon.redshift.jdbc42.Driver",
}
#: Connection types a Glue script may pass for JDBC (``jdbc`` takes the vendor from the URL).
JDBC_CONNECTION_TYPES = ("jdbc", *DRIVERS)
DEFAULT_HASH_PARTITIONS = 7
#: Glue's own keys; everything else in connection_options goes to Spark's JDBC datasource.
_GLUE_KEYS = {
    "url",
    "dbtable",
    "user",
    "password",
    "hashfield",
    "hashexpression",
    "hashpartitions",
    "database",
    "connectionName",
    "useConnectionProperties",
    "redshiftTmpDir",
    "customJdbcDriverS3Path",
    "customJdbcDriverClassName",
    "jobBookmarkKeys",
    "jobBookmarkKeysSortOrder",
    "preactions",
    "postactions",
    "bulkSize",
    "vendor",
    "fullUrl",
    "catalog_connection",
}
_SIMPLE_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class GlueJdbcError(RuntimeError):
    """A JDBC source or sink that cannot work as configured (missing option, driver or connection)."""


# -- named connections ---------------------------------------------------------------------------------
def connections_file() -> Path:
    """Where the named connections are kept (see the module docstring)."""
    override = os.environ.get("LAKEFORGE_GLUE_CONNECTIONS")
    if override:
        return Path(override)
    from catalog.settings import get_settings

    return get_settings().home / "glue-connections.json"


def load_connections(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or connections_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GlueJdbcError(f"Connections file {path} is not valid JSON: {exc}") from None
    conns = data.get("connections", {}) if isinstance(data, dict) else None
    if not isinstance(conns, dict):
        raise GlueJdbcError(f'Connections file {path} must hold {{"connections": {{name: {{url, ...}}}}}}')
    return conns


def get_connection(name: str, path: Path | None = None) -> dict[str, Any]:
    """A named connection: ``url``, ``user``, ``password``, ``vendor`` and any extra properties."""
    path = path or connections_file()
    conns = load_connections(path)
    if name not in conns:
        known = ", ".join(sorted(conns)) or "none"
        raise GlueJdbcError(
            f"No JDBC connection named {name!r} in {path} (known: {known}); add it with "
            "GlueContext.register_connection(name, url, user, password)"
        )
    conn = dict(conns[name])
    if not conn.get("url"):
        raise GlueJdbcError(f"Connection {name!r} in {path} has no url")
    conn.setdefault("vendor", vendor_of(conn["url"]))
    conn.setdefault("user", None)
    conn.setdefault("password", None)
    return conn


def register_connection(
    name: str, url: str, user: str | None = None, password: str | None = None, path: Path | None = None, **extra: Any
) -> Path:
    """Add or replace a named connection (written atomically); returns the connections file."""
    if not name or not url.startswith("jdbc:"):
        raise GlueJdbcError(f"A connection needs a name and a jdbc: URL, got {name!r} and {url!r}")
    path = path or connections_file()
    conns = load_connections(path)
    conns[name] = {"url": url, "user": user, "password": password, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".connections-", dir=path.parent)
    with os.fdopen(fd, "w") as out:
        json.dump({"connections": conns}, out, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def extract_jdbc_conf(name: str) -> dict[str, Any]:
    """Glue's ``extract_jdbc_conf``: ``url``, ``fullUrl``, ``user``, ``password``, ``vendor``."""
    conn = get_connection(name)
    return {**conn, "fullUrl": conn["url"]}


def with_database(url: str, database: str | None) -> str:
    """The URL with ``database`` as its path when the URL names none (host-style URLs only)."""
    if not database or not url.startswith("jdbc:"):
        return url
    inner = url[len("jdbc:") :]
    if "://" not in inner:
        return url  # jdbc:sqlite:/file, jdbc:oracle:thin:@... : no database part to fill
    parts = urlsplit(inner)
    if parts.path.strip("/"):
        return url
    return "jdbc:" + urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


# -- reading and writing -------------------------------------------------------------------------------
def vendor_of(url: str) -> str:
    match = re.match(r"jdbc:([a-zA-Z0-9]+):", url or "")
    if not match:
        raise GlueJdbcError(f"Not a JDBC URL: {url!r} (expected jdbc:<vendor>:...)")
    return match.group(1).lower()


def resolve_options(connection_type: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Connection options with ``connectionName`` expanded and the vendor checked against the URL."""
    resolved = dict(options)
    name = resolved.get("connectionName") or resolved.get("catalog_connection")
    if name:
        conn = get_connection(str(name))
        for key in ("url", "user", "password"):
            if resolved.get(key) is None and conn.get(key) is not None:
                resolved[key] = conn[key]
    if not resolved.get("url"):
        raise GlueJdbcError(f"connection_type {connection_type!r} needs connection_options['url'] (or connectionName)")
    resolved["url"] = with_database(str(resolved["url"]), resolved.get("database"))
    vendor = vendor_of(resolved["url"])
    if connection_type not in ("jdbc", vendor) and not (connection_type == "postgresql" and vendor == "postgres"):
        raise GlueJdbcError(f"connection_type {connection_type!r} does not match the URL's vendor {vendor!r}")
    resolved["vendor"] = vendor
    if not resolved.get("dbtable"):
        raise GlueJdbcError(f"connection_type {connection_type!r} needs connection_options['dbtable']")
    return resolved


def _driver(spark: SparkSession, options: Mapping[str, Any]) -> str:
    vendor = options["vendor"]
    driver = options.get("customJdbcDriverClassName") or options.get("driver") or DRIVERS.get(vendor)
    if not driver:
        raise GlueJdbcError(f"No JDBC driver known for {vendor!r}: pass customJdbcDriverClassName")
    try:
        spark.sparkContext._jvm.java.lang.Class.forName(driver)  # type: ignore[union-attr]
    except Exception as exc:  # py4j wraps ClassNotFoundException
        hint = {
            "postgresql": "apt-get install libpostgresql-jdbc-java, then rerun setup (.ci/setup)",
            "sqlite": "apt-get install libxerial-sqlite-jdbc-java, then rerun setup (.ci/setup)",
        }.get(vendor, "put its jar into pyspark's jars/ directory")
        raise GlueJdbcError(f"The JDBC driver {driver} for {vendor} is not on Spark's classpath: {hint}") from exc
    return str(driver)


def _properties(spark: SparkSession, options: Mapping[str, Any]) -> dict[str, str]:
    props = {"driver": _driver(spark, options)}
    for key in ("user", "password"):
        if options.get(key) is not None:
            props[key] = str(options[key])
    for key, value in options.items():
        if key not in _GLUE_KEYS and key != "driver" and value is not None:
            props[key] = str(value)
    return props


def _column(name: str) -> str:
    if _SIMPLE_IDENT.fullmatch(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def hash_sql(vendor: str, options: Mapping[str, Any]) -> str | None:
    """The integer SQL expression rows are spread by, or None when no hash option is given."""
    if options.get("hashexpression"):
        return f"({options['hashexpression']})"
    field = options.get("hashfield")
    if not field:
        return None
    col = _column(str(field))
    if vendor == "postgresql":
        return f"CAST(hashtext(CAST({col} AS text)) AS bigint)"
    if vendor == "sqlite":
        text = f"CAST({col} AS TEXT)"
        return f"(COALESCE(CAST({col} AS INTEGER), 0) + LENGTH({text}) * 7 + UNICODE(SUBSTR({text}, -1)))"
    return col


def hash_predicates(vendor: str, expression: str, partitions: int) -> list[str]:
    """One WHERE clause per partition: disjoint, and together every row (NULL hashes in the first)."""
    if partitions < 1:
        raise GlueJdbcError(f"hashpartitions must be >= 1, got {partitions}")
    remainder = f"({expression} % {partitions})" if vendor == "sqlite" else f"MOD({expression}, {partitions})"
    preds = [f"ABS({remainder}) = {i}" for i in range(partitions)]
    preds[0] = f"({preds[0]} OR {expression} IS NULL)"
    return preds


def read(spark: SparkSession, connection_type: str, options: Mapping[str, Any]) -> DataFrame:
    """Read a JDBC table, in parallel when a hash option is given (see the module docstring)."""
    resolved = resolve_options(connection_type, options)
    props = _properties(spark, resolved)
    expression = hash_sql(resolved["vendor"], resolved)
    url, table = resolved["url"], str(resolved["dbtable"])
    if expression is None:
        return spark.read.jdbc(url, table, properties=props)
    partitions = int(resolved.get("hashpartitions") or DEFAULT_HASH_PARTITIONS)
    predicates = hash_predicates(resolved["vendor"], expression, partitions)
    log.info("reading %s in %d hash partitions by %s", table, partitions, expression)
    return spark.read.jdbc(url, table, predicates=predicates, properties=props)


def primary_key(spark: SparkSession, connection_type: str, options: Mapping[str, Any]) -> list[str]:
    """The primary-key columns of ``dbtable`` in key order, from the driver's metadata (empty when it has
    none, or ``dbtable`` is a query): the default bookmark keys of a JDBC source."""
    resolved = resolve_options(connection_type, options)
    props = _properties(spark, resolved)
    table = str(resolved["dbtable"]).strip()
    if table.startswith("("):
        return []
    schema, _, name = table.rpartition(".")
    schema, name = schema.strip('"`'), name.strip('"`')
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    info = jvm.java.util.Properties()
    for key in ("user", "password"):
        if props.get(key) is not None:
            info.setProperty(key, props[key])
    conn = jvm.java.sql.DriverManager.getConnection(resolved["url"], info)
    try:
        meta = conn.getMetaData()
        for candidate in dict.fromkeys((name, name.lower(), name.upper())):
            rows = meta.getPrimaryKeys(None, schema or None, candidate)
            keys: list[tuple[int, str]] = []
            while rows.next():
                keys.append((int(rows.getInt("KEY_SEQ")), str(rows.getString("COLUMN_NAME"))))
            rows.close()
            if keys:
                return [column for _seq, column in sorted(keys)]
        return []
    finally:
        conn.close()


def write(spark: SparkSession, df: DataFrame, connection_type: str, options: Mapping[str, Any]) -> None:
    """Append ``df`` to a JDBC table (created when missing), running ``preactions``/``postactions``."""
    resolved = resolve_options(connection_type, options)
    props = _properties(spark, resolved)
    if resolved["vendor"] == "sqlite" and "numPartitions" not in props:
        props["numPartitions"] = "1"  # SQLite takes one writer at a time ("database is locked" otherwise)
    if resolved.get("bulkSize") and "batchsize" not in props:
        props["batchsize"] = str(resolved["bulkSize"])
    _run_actions(spark, resolved, props, "preactions")
    df.write.jdbc(resolved["url"], str(resolved["dbtable"]), mode="append", properties=props)
    _run_actions(spark, resolved, props, "postactions")


def _run_actions(spark: SparkSession, options: Mapping[str, Any], props: Mapping[str, str], key: str) -> None:
    sql = options.get(key)
    if not sql:
        return
    statements = [s.strip() for s in str(sql).split(";") if s.strip()]
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    info = jvm.java.util.Properties()
    for name in ("user", "password"):
        if props.get(name) is not None:
            info.setProperty(name, props[name])
    conn = jvm.java.sql.DriverManager.getConnection(options["url"], info)
    try:
        stmt = conn.createStatement()
        for statement in statements:
            log.info("%s: %s", key, statement)
            stmt.execute(statement)
        stmt.close()
    finally:
        conn.close()
