"""A small job for experiment tests: append ``--rows`` rows to an Iceberg table with pyiceberg.

``--fail`` exits with an error before writing; ``--short N`` writes N rows fewer than asked (a wrong result).
"""

from __future__ import annotations

import argparse
import sys

import pyarrow as pa
from pyiceberg.catalog.rest import RestCatalog


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--short", type=int, default=0)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args(argv)
    if args.fail:
        sys.stderr.write("asked to fail\n")
        return 3
    catalog = RestCatalog("lake", uri=args.uri)
    catalog.create_namespace_if_not_exists(args.table.rsplit(".", 1)[0])
    data = pa.table({"id": pa.array(range(args.rows - args.short), pa.int64())})
    catalog.create_table_if_not_exists(args.table, schema=data.schema).append(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
