"""Run every benchmark and print one table of their figures: `make bench`.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--markdown] [--strict]

Each script under bench/ runs in a process of its own with `--json` (so every one starts
on fresh servers and a fresh database); its details scroll past on stderr, and its figures
end up in the table: figure, measured, target, verdict (OK, MISSED, or blank for figures
given for information). A script that fails or runs out of time gets an ERROR row.

Exit status: 1 when a script failed; with `--strict`, also when a target was missed.
`--markdown` prints the table as Markdown too (the README's Performance section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# (name, script, arguments, seconds allowed): `make bench` stays within about 6 minutes.
SCRIPTS = (
    ("queries", "queries.py", (), 180),
    ("callback", "callback.py", ("--runs", "20"), 180),
    ("refresh", "refresh_bulk.py", (), 300),
    ("throughput", "throughput.py", (), 240),
    ("load", "load.py", (), 240),
)
COLUMNS = ("figure", "measured", "target", "verdict")


def run(script: str, arguments: tuple[str, ...], timeout: float) -> tuple[list[dict], str]:
    """The figures a script printed as JSON, and what went wrong ("" if nothing)."""
    command = [sys.executable, str(BENCH / script), *arguments, "--json"]
    try:
        finished = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return [], f"did not finish within {timeout:g} s"
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return [], f"exit status {finished.returncode}, no figures"
    try:
        return json.loads(lines[-1])["figures"], ""
    except (ValueError, KeyError, TypeError) as exc:
        return [], f"unreadable figures ({exc})"


def verdict(figure: dict) -> str:
    ok = figure.get("ok")
    return "" if ok is None else ("OK" if ok else "MISSED")


def text_table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in (COLUMNS, *rows)) for i in range(len(COLUMNS))]
    rule = "  ".join("-" * width for width in widths)
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (COLUMNS, *rows)
    ]
    return "\n".join([lines[0], rule, *lines[1:]])


def markdown_table(rows: list[tuple[str, str, str, str]]) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join(
        [line(tuple(c.capitalize() for c in COLUMNS)), "|---|---|---|---|", *map(line, rows)]
    )


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[name for name, *_ in SCRIPTS])
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    rows: list[tuple[str, str, str, str]] = []
    failed = missed = False
    began = time.perf_counter()
    for name, script, arguments, timeout in SCRIPTS:
        if args.only and name not in args.only:
            continue
        print(f"\n=== {script} ===", file=sys.stderr, flush=True)
        started = time.perf_counter()
        figures, problem = run(script, arguments, timeout)
        print(f"=== {script}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        if problem:
            failed = True
            rows.append((f"{script}", problem, "", "ERROR"))
        for figure in figures:
            missed |= figure.get("ok") is False
            rows.append((figure["name"], figure["measured"], figure["target"], verdict(figure)))

    print(f"\nvehicle_auth benchmarks, {machine()}; {time.perf_counter() - began:.0f} s in all\n")
    print(text_table(rows))
    if args.markdown:
        print()
        print(markdown_table(rows))
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
