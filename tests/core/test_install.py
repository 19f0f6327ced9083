"""`pip install -e .` from the checkout makes `from core import predict` work from any directory, and
installs every command."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSENGER = (
    "{'Age': 22.0, 'Cabin': None, 'Embarked': 'S', 'Fare': 7.25, 'Parch': 0, 'Pclass': 3, 'Sex': 'male', 'SibSp': 1}"
)


def test_an_editable_install_imports_the_core_from_anywhere(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip())
    # The new environment sees this one's packages (pip, setuptools, numpy...): no download.
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-e",
         str(ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    done = subprocess.run(
        [str(python), "-c", f"import core; print(core.__file__); print(core.predict({PASSENGER}).proba)"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    where, proba = done.stdout.split()
    assert Path(where) == ROOT / "core" / "__init__.py"
    assert 0.0 < float(proba) < 0.5
    assert not list(ROOT.glob("*.egg-info")), "the install left build files in the checkout"
    for command in ("sklearn-serve", "sklearn-serve-train", "sklearn-serve-package", "sklearn-serve-score",
                    "sklearn-serve-repair"):
        usage = subprocess.run([str(venv / "bin" / command), "--help"], cwd=elsewhere, capture_output=True,
                               text=True, timeout=120)
        assert usage.returncode == 0 and "usage:" in usage.stdout, (command, usage.stderr[-2000:])
