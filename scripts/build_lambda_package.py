"""Build dist/lambda.zip for the AWS Lambda Python runtime named in serverless.yml.

    python scripts/build_lambda_package.py [--python-version 3.12] [--model-dir artifacts/titanic]

Dependencies are installed with pip's --platform/--python-version options (manylinux wheels
only), so the zip is right for Lambda whatever machine builds it. Prints the zipped and unzipped
sizes and fails when the unzipped size passes Lambda's 250 MB limit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
SOURCES = ["handler.py", "core", "adapters"]
# Never shipped: caches, and what only building or testing needs.
EXCLUDE_DIRS = {"__pycache__", "tests", "test"}


def needs_scikit_learn(model_dir: Path) -> bool:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return not manifest.get("fast_sha256")


def pip_install(target: Path, requirements: Path, python_version: str, platform: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--target", str(target), "--platform", platform, "--python-version", python_version,
         "--implementation", "cp", "--only-binary=:all:", "--upgrade", "-r", str(requirements)],
        check=True,
    )


def copy_tree(source: Path, destination: Path) -> None:
    if source.is_file():
        shutil.copy2(source, destination)
        return
    shutil.copytree(source, destination, ignore=lambda _, names: [n for n in names if n in EXCLUDE_DIRS or n.endswith(".pyc")])


def build(out: Path, python_version: str, platform: str, model_dir: Path) -> tuple[int, int]:
    """Write the zip; return (zipped bytes, unzipped bytes)."""
    staging = out.parent / "lambda-build"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pip_install(staging, ROOT / "requirements-lambda.txt", python_version, platform)
    if needs_scikit_learn(model_dir):
        print(f"{model_dir} has no fast form: adding scikit-learn and its stack", file=sys.stderr)
        pip_install(staging, ROOT / "requirements.txt", python_version, platform)
    for name in SOURCES:
        copy_tree(ROOT / name, staging / name)
    artifact_target = staging / "artifacts" / model_dir.name
    artifact_target.parent.mkdir(parents=True, exist_ok=True)
    copy_tree(model_dir, artifact_target)
    for junk in staging.rglob("__pycache__"):
        shutil.rmtree(junk, ignore_errors=True)
    unzipped = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                unzipped += path.stat().st_size
                archive.write(path, path.relative_to(staging))
    shutil.rmtree(staging)
    return out.stat().st_size, unzipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--platform", default="manylinux2014_x86_64")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts" / "titanic")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "lambda.zip")
    args = parser.parse_args(argv)
    zipped, unzipped = build(args.out, args.python_version, args.platform, args.model_dir)
    mb = 1024 * 1024
    print(f"{args.out}: {zipped / mb:.1f} MB zipped, {unzipped / mb:.1f} MB unzipped "
          f"(Lambda's limit: {LAMBDA_UNZIPPED_LIMIT / mb:.0f} MB unzipped)")
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        print("error: the package is over Lambda's unzipped size limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
