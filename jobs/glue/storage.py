"""The lake's object store seen from the Python side of a Glue job: ``s3://`` URIs, file listing with
Glue's ``recurse``/``exclusions`` rules, and purging by retention.

``s3://bucket/key`` (also ``s3a``, ``s3n``) is ``<root>/bucket/key``, the mapping the JVM side
(``jobs/java/LakeS3FileSystem.java``) uses, so what Python lists Spark reads. Keys are taken literally,
as Hadoop's ``Path`` takes them (``%`` is not decoded). ``file:`` URIs and plain paths are local files.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

S3_SCHEMES = ("s3", "s3a", "s3n")
_S3 = re.compile(r"^(s3|s3a|s3n)://([^/?#]+)(/[^?#]*)?$", re.IGNORECASE)
#: Hidden files Spark and Hadoop skip (``_SUCCESS``, ``.crc``, the FileSystem's in-flight objects).
_HIDDEN = ("_", ".")


class StorageError(ValueError):
    """A location that is malformed or outside what the lake's object store serves."""


@dataclass(frozen=True)
class StoredFile:
    """One object (file): its URI as Spark sees it, its local path, size and modification time."""

    uri: str
    local: Path
    size: int
    mtime: float


def is_s3(location: str) -> bool:
    return bool(_S3.match(location))


def split_s3(location: str) -> tuple[str, str, str]:
    """``(scheme, bucket, key)`` of an ``s3://`` URI (key without the leading slash)."""
    match = _S3.match(location)
    if not match:
        raise StorageError(f"Not an s3 URI: {location!r} (expected s3://bucket/key)")
    scheme, bucket, path = match.group(1).lower(), match.group(2), match.group(3) or "/"
    key = path.lstrip("/")
    if any(part == ".." for part in key.split("/")):
        raise StorageError(f"Invalid location {location!r}: '..' is not allowed in keys")
    return scheme, bucket, key


def local_path(location: str, root: Path | str) -> Path:
    """The local file or directory behind ``location`` (``s3://``, ``file:`` or a plain path)."""
    if is_s3(location):
        _scheme, bucket, key = split_s3(location)
        path = Path(root) / bucket
        return path / key if key else path
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise StorageError(f"Unsupported location scheme {parsed.scheme!r} in {location!r}: use s3:// or file:")
    return Path(location)


def join(location: str, *parts: str) -> str:
    """``location`` with path parts appended (one slash between each)."""
    result = location.rstrip("/")
    for part in parts:
        result = f"{result}/{part.strip('/')}"
    return result


def uri_of(local: Path, base_location: str, base_local: Path) -> str:
    """The URI of ``local`` (below ``base_local``) in the form of ``base_location``."""
    relative = local.relative_to(base_local).as_posix()
    if relative == ".":
        return base_location
    if is_s3(base_location) or urlparse(base_location).scheme == "file":
        return join(base_location, relative)
    return str(local)


# -- globs (Glue's exclusions: Java PathMatcher glob syntax) -------------------------------------------
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob: ``*`` and ``?`` stay inside one path segment, ``**`` crosses segments,
    ``[...]`` is a class, ``{a,b}`` alternatives."""
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise StorageError(f"Invalid exclusion glob {pattern!r}: unbalanced '{{'")
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def parse_exclusions(exclusions: str | Sequence[str] | None) -> list[re.Pattern[str]]:
    """Glue's ``exclusions`` option: a JSON list of globs (a list is accepted too)."""
    if exclusions is None or exclusions == "":
        return []
    if isinstance(exclusions, str):
        try:
            parsed = json.loads(exclusions)
        except json.JSONDecodeError as exc:
            raise StorageError(
                f"Invalid exclusions {exclusions!r}: expected a JSON list of globs, e.g. '[\"**.txt\"]' ({exc})"
            ) from None
    else:
        parsed = list(exclusions)
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        raise StorageError(f"Invalid exclusions {exclusions!r}: expected a JSON list of glob strings")
    return [glob_to_regex(p) for p in parsed]


def _excluded(uri: str, relative: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    candidates = [uri, relative]
    if is_s3(uri):
        candidates.append(split_s3(uri)[2])
    return any(p.match(c) for p in patterns for c in candidates)


# -- listing -------------------------------------------------------------------------------------------
def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[{")


def _visible(name: str) -> bool:
    return not name.startswith(_HIDDEN)


def list_files(
    locations: Iterable[str],
    root: Path | str,
    *,
    recurse: bool = False,
    exclusions: str | Sequence[str] | None = None,
    include_hidden: bool = False,
) -> list[StoredFile]:
    """The files under ``locations`` in URI order.

    A location naming a file is that file; a directory gives its files, and with ``recurse`` the files of
    every sub-directory too. Names starting with ``_`` or ``.`` are skipped (unless ``include_hidden``),
    as Spark skips them. ``exclusions`` globs are matched against the full URI, the key inside the
    bucket and the path relative to the listed location. Glob characters in a location expand.
    A missing location is an error, as a missing S3 prefix is in Glue.
    """
    patterns = parse_exclusions(exclusions)
    found: dict[str, StoredFile] = {}
    for location in locations:
        for base_uri in _expand(location, root):
            base = local_path(base_uri, root)
            if not base.exists():
                raise FileNotFoundError(f"No such file or directory: {base_uri} (local {base})")
            for local in _walk(base, recurse, include_hidden):
                uri = uri_of(local, base_uri, base)
                relative = local.relative_to(base).as_posix() if local != base else local.name
                if patterns and _excluded(uri, relative, patterns):
                    continue
                stat = local.stat()
                found[uri] = StoredFile(uri, local, stat.st_size, stat.st_mtime)
    return [found[k] for k in sorted(found)]


def _expand(location: str, root: Path | str) -> list[str]:
    if not _has_glob(location):
        return [location]
    if is_s3(location):
        scheme, bucket, key = split_s3(location)
        base = Path(root) / bucket
        matches = sorted(p for p in base.glob(key) if p.exists())
        return [f"{scheme}://{bucket}/{p.relative_to(base).as_posix()}" for p in matches]
    path = local_path(location, root)
    anchor = Path(path.anchor)
    matches = sorted(anchor.glob(str(path.relative_to(anchor))))
    prefix = "file://" if location.startswith("file:") else ""
    return [f"{prefix}{p}" for p in matches]


def _walk(base: Path, recurse: bool, include_hidden: bool) -> Iterable[Path]:
    if base.is_file():
        yield base
        return
    stack = [base]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            children = sorted(entries, key=lambda e: e.name)
        dirs = []
        for entry in children:
            if not include_hidden and not _visible(entry.name):
                continue
            if entry.is_dir():
                if recurse:
                    dirs.append(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path)
        stack.extend(reversed(dirs))


# -- purge ---------------------------------------------------------------------------------------------
@dataclass
class PurgeResult:
    """What a purge deleted, kept (newer than the retention period) and failed to delete (URIs)."""

    deleted: list[str]
    kept: list[str]
    failed: list[tuple[str, str]]


def purge(
    location: str,
    root: Path | str,
    *,
    retention_hours: float = 168.0,
    exclude_storage_classes: Sequence[str] = (),
    now: float | None = None,
) -> PurgeResult:
    """Delete the files under ``location`` older than ``retention_hours`` (files newer are kept; 0 deletes
    everything), then the directories left empty. Every object here is in the ``STANDARD`` storage class,
    so excluding ``STANDARD`` keeps everything. A missing location purges nothing."""
    if retention_hours < 0:
        raise StorageError(f"retentionPeriod must be >= 0 hours, got {retention_hours}")
    base = local_path(location, root)
    result = PurgeResult([], [], [])
    if not base.exists():
        return result
    files = list_files([location], root, recurse=True, include_hidden=True)
    if "STANDARD" in {c.upper() for c in exclude_storage_classes}:
        result.kept = [f.uri for f in files]
        return result
    cutoff = (time.time() if now is None else now) - retention_hours * 3600.0
    for stored in files:
        if retention_hours > 0 and stored.mtime >= cutoff:
            result.kept.append(stored.uri)
            continue
        try:
            stored.local.unlink()
            result.deleted.append(stored.uri)
        except OSError as exc:
            result.failed.append((stored.uri, str(exc)))
    bucket_dir = Path(root) / split_s3(location)[1] if is_s3(location) else None
    _remove_empty_dirs(base, keep=bucket_dir)
    return result


def _remove_empty_dirs(base: Path, keep: Path | None) -> None:
    if not base.is_dir():
        return
    for current, _dirs, _files in os.walk(base, topdown=False):
        path = Path(current)
        if keep is not None and path == keep:
            continue
        try:
            path.rmdir()
        except OSError:
            pass  # not empty


def remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove the empty directories from ``path`` up to, not including, ``stop`` (only below ``stop``)."""
    current = path
    while current != stop and stop in current.parents:
        try:
            current.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            return  # not empty
        current = current.parent


def write_manifest(manifest_location: str, root: Path | str, result: PurgeResult) -> tuple[str, str]:
    """Write Glue's purge manifests: ``Success.csv`` (one deleted URI a line) and ``Failed.csv``
    (URI, error) under ``manifest_location``; returns their URIs."""
    directory = local_path(manifest_location, root)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Success.csv").write_text("".join(f"{uri}\n" for uri in result.deleted))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for uri, error in result.failed:
        writer.writerow([uri, error])
    (directory / "Failed.csv").write_text(buffer.getvalue())
    return join(manifest_location, "Success.csv"), join(manifest_location, "Failed.csv")


def hive_partition_dirs(base: Path, keys: Sequence[str]) -> list[tuple[list[str], str]]:
    """The ``key=value`` directory chains ``depth == len(keys)`` below ``base``: ``(raw values, relative
    path)`` for each, values still escaped as Spark wrote them."""
    found: list[tuple[list[str], str]] = []

    def visit(directory: Path, depth: int, values: list[str], parts: list[str]) -> None:
        if depth == len(keys):
            found.append((values, "/".join(parts)))
            return
        if not directory.is_dir():
            return
        prefix = f"{keys[depth]}="
        for child in sorted(directory.iterdir()):
            if child.is_dir() and fnmatch.fnmatchcase(child.name.lower(), prefix.lower() + "*"):
                visit(child, depth + 1, [*values, child.name[len(prefix) :]], [*parts, child.name])

    visit(base, 0, [], [])
    return found
