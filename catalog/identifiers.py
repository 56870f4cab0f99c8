"""Namespace and table identifiers: parsing from URLs and validation of hostile names.

A namespace is a tuple of levels. In URLs the levels are joined by the unit separator (0x1F);
in the database they are joined by ``.`` (the layout pyiceberg's SqlCatalog and Iceberg's JdbcCatalog
share), so no level may contain a dot.
"""

from __future__ import annotations

import re
import unicodedata

from catalog.errors import ValidationFailedError

NAMESPACE_SEPARATOR = "\x1f"
MAX_NAME_LENGTH = 255
MAX_NAMESPACE_DEPTH = 16

#: Names of Iceberg metadata tables: ``db.t.snapshots`` must stay unambiguous.
METADATA_TABLE_NAMES = frozenset(
    {
        "all_data_files",
        "all_delete_files",
        "all_entries",
        "all_files",
        "all_manifests",
        "data_files",
        "delete_files",
        "entries",
        "files",
        "history",
        "manifests",
        "metadata_log_entries",
        "partitions",
        "position_deletes",
        "refs",
        "snapshots",
    }
)

_FORBIDDEN = re.compile(r"[/\\.\x00-\x1f\x7f]")

Namespace = tuple[str, ...]


def validate_name(name: str, kind: str) -> str:
    """Return ``name`` if it is a legal level/table/view name, else raise a 400 error saying why."""
    if not isinstance(name, str) or name == "":
        raise ValidationFailedError(f"Invalid {kind} name: must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailedError(f"Invalid {kind} name: longer than {MAX_NAME_LENGTH} characters")
    bad = _FORBIDDEN.search(name)
    if bad:
        char = bad.group(0)
        shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
        raise ValidationFailedError(
            f"Invalid {kind} name {name[:64]!r}: character {shown} is not allowed "
            "(no '.', '/', '\\' or control characters)"
        )
    if name.strip() != name:
        raise ValidationFailedError(f"Invalid {kind} name {name!r}: leading or trailing white space")
    if unicodedata.normalize("NFC", name) != name:
        raise ValidationFailedError(f"Invalid {kind} name {name!r}: not in Unicode NFC form")
    return name


def validate_namespace(levels: list[str] | tuple[str, ...]) -> Namespace:
    if not isinstance(levels, list | tuple) or len(levels) == 0:
        raise ValidationFailedError("Invalid namespace: must have at least one level")
    if len(levels) > MAX_NAMESPACE_DEPTH:
        raise ValidationFailedError(f"Invalid namespace: deeper than {MAX_NAMESPACE_DEPTH} levels")
    ns = tuple(validate_name(level, "namespace") for level in levels)
    if len(namespace_to_db(ns)) > MAX_NAME_LENGTH:
        raise ValidationFailedError(f"Invalid namespace: longer than {MAX_NAME_LENGTH} characters in total")
    return ns


def validate_table_name(name: str, kind: str = "table") -> str:
    validate_name(name, kind)
    if name.lower() in METADATA_TABLE_NAMES:
        raise ValidationFailedError(
            f"Invalid {kind} name {name!r}: it collides with the Iceberg metadata table of that name"
        )
    return name


def parse_namespace(path_value: str) -> Namespace:
    """Parse the ``{namespace}`` path parameter (levels joined by 0x1F, already URL-decoded)."""
    return validate_namespace(path_value.split(NAMESPACE_SEPARATOR))


def parse_namespace_lenient(path_value: str) -> Namespace | None:
    """Like :func:`parse_namespace`, but ``None`` for a name that cannot exist (for lookups that 404)."""
    try:
        return parse_namespace(path_value)
    except ValidationFailedError:
        return None


def namespace_to_db(ns: Namespace) -> str:
    return ".".join(ns)


def namespace_from_db(value: str) -> Namespace:
    return tuple(value.split("."))


def dotted(ns: Namespace, name: str | None = None) -> str:
    """Human form used in messages: ``ns1.ns2.table``."""
    return ".".join((*ns, name) if name is not None else ns)
