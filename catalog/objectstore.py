"""Locations of the lake: ``file:`` URIs, plain paths, and ``s3://bucket/key`` mapped to a local root.

There is no S3 service here: a bucket is a directory under the object-store root.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from catalog.errors import ValidationFailedError

S3_SCHEMES = ("s3", "s3a", "s3n")


def local_path(location: str, object_store_root: Path) -> Path:
    """Map a location URI to the local path that holds it."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else location)
    if parsed.scheme in S3_SCHEMES:
        if not parsed.netloc:
            raise ValidationFailedError(f"Invalid location {location!r}: an s3 URI needs a bucket")
        key = unquote(parsed.path).lstrip("/")
        if any(part == ".." for part in key.split("/")):
            raise ValidationFailedError(f"Invalid location {location!r}: '..' is not allowed in keys")
        return object_store_root / parsed.netloc / key
    raise ValidationFailedError(f"Unsupported location scheme {parsed.scheme!r} in {location!r}")
