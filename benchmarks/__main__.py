"""Run benchmarks by name (all when none given); print one markdown table and write it
to ``docs/benchmarks.md``."""

from __future__ import annotations

import importlib
import platform
import sys
import time
from pathlib import Path

from benchmarks._report import Figure, markdown

ALL = [
    "pg",
    "source",
    "source-git",
    "runner",
    "runner-docker",
    "router",
    "router-caddy",
    "ingest",
    "api",
]


def main(argv: list[str]) -> int:
    names = argv or ALL
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}")
        return 2
    figures: list[Figure] = []
    for name in names:
        try:
            module = importlib.import_module(f"benchmarks.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            print(f"{name}: not available ({exc})")
            continue
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        results: list[Figure] = module.run()
        for fig in results:
            print(f"  {fig.figure}: {fig.value:.4g} {fig.unit}", flush=True)
        print(f"   ({time.perf_counter() - started:.1f} s)")
        figures += results
    table = markdown(figures)
    print()
    print(table)
    header = (
        "# Benchmarks\n\nFigures from `nox -s bench`, each beside a reference measured "
        "in the same run.\n"
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}.\n\n"
    )
    out = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    if not argv:
        out.write_text(header + table + "\n")
    else:
        section = Path(out.parent / f"benchmarks-{'-'.join(names)}.md")
        section.write_text(header + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
