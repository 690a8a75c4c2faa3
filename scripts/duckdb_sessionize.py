#!/usr/bin/env python3
"""Run datasets/sql/sessionize.sql on DuckDB, the peer of the DataFusion
engine in the sessionization benchmark (scripts/bench-sessionize-scale.sh).

The DataFusion query is turned into DuckDB's dialect with the changes
docs/data-format.md lists, its parameters are filled with the sessionizer's
defaults, and the numbered, ordered requests are written to a Parquet file
within a memory limit, spilling to a temporary directory.

Usage: duckdb_sessionize.py RAW.parquet OUT.parquet [--memory-limit-mb 2048]
       [--threads 2] [--temp-dir DIR]
"""
import argparse
import pathlib
import time

import duckdb

SQL = pathlib.Path(__file__).resolve().parent.parent / "datasets" / "sql" / "sessionize.sql"
# The sessionizer's defaults: 30 minutes gap, 720 minutes span, 1000 requests.
PARAMS = {"${gap_us}": str(30 * 60 * 10**6),
          "${max_duration_us}": str(720 * 60 * 10**6),
          "${max_events}": "1000"}
# DataFusion -> DuckDB, as in docs/data-format.md.
DIALECT = [("CAST(ts AS BIGINT)", "epoch_us(ts)"),
           (") / ${max_duration_us}", ") // ${max_duration_us}"),
           (") / ${max_events}", ") // ${max_events}"),
           ("last_value(account ORDER BY t_us, prompt)", "last(account ORDER BY t_us, prompt)")]


def duckdb_query() -> str:
    text = SQL.read_text()
    for old, new in DIALECT:
        if old not in text:
            raise SystemExit(f"{SQL}: expected `{old}` to translate; the query changed")
        text = text.replace(old, new)
    for key, value in PARAMS.items():
        text = text.replace(key, value)
    lines = [l for l in text.splitlines() if not l.lstrip().startswith("--")]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw")
    ap.add_argument("out")
    ap.add_argument("--memory-limit-mb", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temp-dir", default="/tmp/duckdb-spill")
    args = ap.parse_args()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{args.memory_limit_mb}MB'")
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"SET temp_directory = '{args.temp_dir}'")
    con.execute("SET preserve_insertion_order = true")
    con.execute(f"CREATE VIEW requests AS SELECT * FROM read_parquet('{args.raw}')")
    started = time.time()
    con.execute(f"COPY ({duckdb_query()}) TO '{args.out}' (FORMAT parquet, COMPRESSION zstd)")
    seconds = time.time() - started
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{args.out}')").fetchone()[0]
    sessions = con.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT account_id, session_no FROM read_parquet('{args.out}'))"
    ).fetchone()[0]
    print(f"duckdb {duckdb.__version__}: {rows} requests, {sessions} sessions in {seconds:.2f} s")


if __name__ == "__main__":
    main()
