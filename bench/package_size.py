"""Lambda package size: the default package (fast form) against one carrying scikit-learn.

python -m bench.package_size
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.servers import ROOT


def build(out: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "scripts/build_lambda_package.py", "--out", str(out), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()[-300:]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="package-size-"))
    print("# Lambda package (python3.12, manylinux x86_64)")
    print("| package | size |")
    print("| --- | --- |")
    fast = build(work / "fast.zip").split(": ", 1)[-1]
    print(f"| default (fast form, no scikit-learn) | {fast} |")
    heavy = build(work / "sk.zip", "--with-scikit-learn").split(": ", 1)[-1]
    print(f"| with scikit-learn, numpy, scipy, pandas | {heavy} |")


if __name__ == "__main__":
    main()
