"""The Lambda package of this checkout against an earlier revision's: unzipped size and cold start.

    python -m bench.lambda_revision_bench [--revision REV] [--runs 15]

Both packages are built by scripts/build_lambda_package.py (the revision's in a git worktree),
unzipped, and cold-started in turns on Python 3.12 with nothing else importable (bench.cold_start:
a new interpreter from `import handler` to the first answered event, SQLite). Medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.cold_start import Variant, run_interleaved, unzipped_package
from bench.servers import ROOT


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--revision", default="32acca1")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lambda-revision-"))
    before = work / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.revision],
                   check=True, capture_output=True)
    try:
        packages = {f"package at {args.revision}": unzipped_package(work / "then", before),
                    "package now": unzipped_package(work / "now")}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], capture_output=True)
    if any(package is None for package in packages.values()):
        raise SystemExit("no Python 3.12 here: nothing measured")
    variants = [Variant(name, lambda run, name=name: {"STORE_URL": f"sqlite:///{work / name.split()[-1]}-{run}.db"},
                        package) for name, package in packages.items()]
    run_interleaved(variants, args.runs)
    print(f"# Lambda package at {args.revision} and now: unzipped size, cold start (median of {args.runs}, in turns)")
    print("| package | unzipped | cold start, in the process | whole process |")
    print("| --- | ---: | ---: | ---: |")
    for variant in variants:
        assert variant.package is not None
        size = tree_bytes(variant.package[1])
        print(f"| {variant.name} | {size / 1e6:.2f} MB | {statistics.median(variant.inside) * 1000:.0f} ms | "
              f"{statistics.median(variant.wall) * 1000:.0f} ms |")
    shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
