"""Build dist/lambda.zip for the AWS Lambda Python runtime named in serverless.yml.

    python scripts/build_lambda_package.py [--python-version 3.12] [--model-dir artifacts/titanic]

The artifact goes into the package as `model/`, which handler.py serves unless MODEL_DIR says
otherwise: a package always finds its own model. A model with a fast form needs no scientific
stack: the package carries only requirements-lambda.txt (no uvicorn, uvloop, httptools or
click: Lambda runs no server) and the fast form's compiled code, written by the target Python
into the artifact's cache so that no cold start compiles it. A model served by scikit-learn
adds scikit-learn, numpy, scipy, pandas and joblib at requirements.txt's versions, and nothing
else of requirements.txt.

Dependencies are installed with pip's --platform/--python-version options (manylinux wheels
only), so the zip is right for Lambda whatever machine builds it. Prints the zipped and unzipped
sizes and fails when the unzipped size passes Lambda's 250 MB limit.

Lambda's code directory is read-only, so Python can never cache the bytecode it compiles there:
a package without .pyc files compiles every module from source on every cold start. When an
interpreter of the target version is found (or given with --compile-with), every module is
compiled with it, as unchecked-hash .pyc files: a zip keeps mtimes only to 2 seconds, so
timestamp-checked ones could be judged stale and compiled again anyway.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
SOURCES = ["handler.py", "core", "adapters"]
# What only a server or a command runs: a function never imports them (uvicorn and
# prometheus_client, which they import, are not in the package either).
SERVER_ONLY = ["core/build", "adapters/serve.py", "adapters/asgi.py", "adapters/repair_aggregates.py",
               "adapters/http/protocol.py", "adapters/http/prometheus.py"]
# Where the package keeps its model (handler.PACKAGED_MODEL_DIR).
PACKAGED_MODEL = "model"
# What a model served by scikit-learn needs of requirements.txt (their dependencies come along).
SCIENTIFIC_STACK = {"scikit-learn", "numpy", "scipy", "pandas", "joblib"}
# What a function storing in PostgreSQL needs of requirements.txt: psycopg's binary wheel carries
# its own libpq, which Lambda's runtime does not have.
POSTGRES_STACK = {"psycopg[binary]", "psycopg-pool"}
# Never shipped: caches, and what only building or testing needs.
EXCLUDE_DIRS = {"__pycache__", "tests", "test"}


# botocore carries the models of ~450 AWS services (28 MB) and, at the first call, lists them all
# and parses the endpoints of every one; the function calls DynamoDB (sts: credentials that
# assume a role). Every other service's data is left out.
BOTOCORE_SERVICES = {"dynamodb", "sts"}


def needs_scikit_learn(model_dir: Path) -> bool:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return not manifest.get("fast_sha256")


# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels and older fit.
DEFAULT_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def package_requirements(requirements: Path, out: Path, stacks: set[str]) -> Path:
    """requirements-lambda.txt and requirements.txt's pins of the packages in `stacks`, written to
    `out` (one install, so that pip resolves them together: pandas' python-dateutil must still fit
    botocore's)."""
    pins = [f"-r {ROOT / 'requirements-lambda.txt'}"]
    for line in requirements.read_text().splitlines():
        name = line.split("#", 1)[0].split("==", 1)[0].strip().lower()
        if name in stacks:
            pins.append(line.strip())
    out.write_text("\n".join(pins) + "\n")
    return out


def pip_install(target: Path, requirements: Path, python_version: str, platforms: list[str]) -> None:
    platform_args = [arg for platform in platforms for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(target),
            *platform_args,
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--upgrade",
            "-r",
            str(requirements),
        ],
        check=True,
    )


def find_interpreter(python_version: str) -> str | None:
    """A Python of `python_version` ("3.12") on this machine: on PATH, the system's, pyenv's."""
    name = f"python{python_version}"
    pyenv = sorted(glob.glob(f"/root/.pyenv/versions/{python_version}*/bin/{name}"))
    candidates = [shutil.which(name), f"/usr/bin/{name}", *pyenv]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        if out.stdout.strip() == python_version:
            return candidate
    return None


def slim_botocore(staging: Path) -> None:
    """Keep only BOTOCORE_SERVICES' models, and only their entries in endpoints.json."""
    data = staging / "botocore" / "data"
    if not data.is_dir():
        return
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
            shutil.rmtree(entry)
    endpoints = data / "endpoints.json"
    document = json.loads(endpoints.read_text())
    for partition in document["partitions"]:
        partition["services"] = {k: v for k, v in partition["services"].items() if k in BOTOCORE_SERVICES}
    endpoints.write_text(json.dumps(document, separators=(",", ":")))


def compile_bytecode(staging: Path, interpreter: str) -> None:
    subprocess.run(
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(staging)],
        check=True,
    )


def fill_code_cache(staging: Path, interpreter: str) -> None:
    """Load the packaged model once with the target Python, which writes its fast form's code
    cache (core.forms.CodeCache) into the artifact: Lambda's code directory is read-only."""
    program = "import sys; sys.path.insert(0, sys.argv[1]); from core.model import load_model; load_model(sys.argv[2])"
    subprocess.run(
        [interpreter, "-I", "-S", "-c", program, str(staging), str(staging / PACKAGED_MODEL)], check=True, timeout=600
    )


def tree_size(root: Path, pattern: str = "*") -> int:
    return sum(path.stat().st_size for path in root.rglob(pattern) if path.is_file())


def drop_bytecode_over_limit(staging: Path) -> list[str]:
    """Remove the bytecode of the packages that have the most of it until the package fits
    Lambda's limit (it does, with scikit-learn's stack, only without theirs); returns their names."""
    total = tree_size(staging)
    heaviest = sorted(
        ((tree_size(d, "*.pyc"), d) for d in staging.iterdir() if d.is_dir()), key=lambda x: x[0], reverse=True
    )
    dropped = []
    for bytecode, package in heaviest:
        if total <= LAMBDA_UNZIPPED_LIMIT or not bytecode:
            break
        for cache in [p for p in package.rglob("__pycache__") if p.is_dir()]:
            shutil.rmtree(cache)
        total -= bytecode
        dropped.append(package.name)
    return dropped


def copy_tree(source: Path, destination: Path) -> None:
    if source.is_file():
        shutil.copy2(source, destination)
        return
    shutil.copytree(
        source, destination, ignore=lambda _, names: [n for n in names if n in EXCLUDE_DIRS or n.endswith(".pyc")]
    )


def build(
    out: Path,
    python_version: str,
    platforms: list[str],
    model_dir: Path,
    with_scikit_learn: bool = False,
    compile_with: str | None = None,
    with_postgres: bool = False,
) -> tuple[int, int]:
    """Write the zip; return (zipped bytes, unzipped bytes)."""
    staging = out.parent / "lambda-build"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    stacks: set[str] = set()
    if with_scikit_learn or needs_scikit_learn(model_dir):
        print("adding scikit-learn and its stack (the model has no fast form, or it was asked for)", file=sys.stderr)
        stacks |= SCIENTIFIC_STACK
    if with_postgres:
        print("adding psycopg (binary wheel) and psycopg-pool for a PostgreSQL store", file=sys.stderr)
        stacks |= POSTGRES_STACK
    out.parent.mkdir(parents=True, exist_ok=True)
    wanted = package_requirements(ROOT / "requirements.txt", out.parent / "requirements-package.txt", stacks)
    try:
        pip_install(staging, wanted, python_version, platforms)
    finally:
        wanted.unlink()
    for name in SOURCES:
        copy_tree(ROOT / name, staging / name)
    # Training, packaging and the compilers run at build time only, like the server's modules.
    for name in SERVER_ONLY:
        path = staging / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    copy_tree(model_dir, staging / PACKAGED_MODEL)
    # Libraries' own test suites are never imported at run time (scipy's and scikit-learn's
    # weigh tens of MB).
    for junk in [p for p in staging.rglob("*") if p.is_dir() and p.name in EXCLUDE_DIRS]:
        shutil.rmtree(junk, ignore_errors=True)
    slim_botocore(staging)
    if compile_with:
        compile_bytecode(staging, compile_with)
        if not needs_scikit_learn(model_dir):
            fill_code_cache(staging, compile_with)
        dropped = drop_bytecode_over_limit(staging)
        if dropped:
            print(
                f"warning: left out the bytecode of {', '.join(dropped)} to stay under Lambda's size limit: their"
                " modules are compiled at every cold start (a container image has no such limit)",
                file=sys.stderr,
            )
    else:
        print(
            f"warning: no Python {python_version} found: the package has no bytecode, so every cold start"
            " compiles every module (give one with --compile-with)",
            file=sys.stderr,
        )
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
    parser.add_argument(
        "--platform",
        action="append",
        dest="platforms",
        help=f"wheel platform tag, repeatable (default: {' '.join(DEFAULT_PLATFORMS)})",
    )
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts" / "titanic")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "lambda.zip")
    parser.add_argument(
        "--with-scikit-learn",
        action="store_true",
        help="include scikit-learn, numpy, scipy and pandas even when the fast form makes them unneeded",
    )
    parser.add_argument(
        "--with-postgres",
        action="store_true",
        help="include psycopg and its pool, for a function whose STORE_URL is postgresql://",
    )
    parser.add_argument(
        "--compile-with",
        help="a Python of --python-version that compiles the package's bytecode (default: found on this machine)",
    )
    args = parser.parse_args(argv)
    if not (args.model_dir / "manifest.json").is_file():
        print(f"error: {args.model_dir} is not a model artifact (no manifest.json)", file=sys.stderr)
        return 2
    zipped, unzipped = build(
        args.out,
        args.python_version,
        args.platforms or DEFAULT_PLATFORMS,
        args.model_dir,
        args.with_scikit_learn,
        args.compile_with or find_interpreter(args.python_version),
        args.with_postgres,
    )
    mb = 1024 * 1024
    print(
        f"{args.out}: {zipped / mb:.1f} MB zipped, {unzipped / mb:.1f} MB unzipped "
        f"({unzipped / LAMBDA_UNZIPPED_LIMIT:.0%} of Lambda's {LAMBDA_UNZIPPED_LIMIT / mb:.0f} MB limit)"
    )
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        print("error: the package is over Lambda's unzipped size limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
