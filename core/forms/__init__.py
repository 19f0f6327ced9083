"""Fast forms: a fitted pipeline as plain data (an artifact's fast.json), scored by pure Python.

A fast form is compiled when the artifact is built (core.build.compile, build time only) and checked
there against scikit-learn on every check row. Serving reads its JSON and imports nothing
heavy: `load_form` writes the preprocessing steps (core.forms.steps) and the model's family as
one Python function, straight-line code for the steps and nested `if`s for trees, which CPython
runs several times faster than a loop over node arrays. Each family has a module, registered in
FAMILIES: `needed(model, steps, outputs)` names the slots its code reads and
`source(model, steps, outputs)` writes that code.

Writing and compiling the function of a 100-tree forest takes about half a second, so
`load_form_file` keeps the compiled code beside the artifact (see `CodeCache`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, Protocol

from core.forms import boosting, forest, linear
from core.forms.linear_v1 import FORMAT as LINEAR_V1
from core.forms.linear_v1 import LinearForm
from core.forms.steps import RUNTIME as STEP_RUNTIME
from core.forms.steps import StepSource

FORMAT = "fast-v2"
FAMILIES: dict[str, ModuleType] = {"linear": linear, "forest": forest, "boosting": boosting}
# Below this much source, compiling is quicker than reading a cache file.
CACHE_FROM_CHARS = 20_000


def sigmoid(z: float) -> float:
    # Written so that neither branch can overflow, like scipy's expit.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# What generated code may call besides its constants: given at every load, never cached.
RUNTIME: dict[str, Any] = {**STEP_RUNTIME, "sigmoid": sigmoid}


class Form(Protocol):
    def proba(self, values: Sequence[Any]) -> float: ...


class GeneratedForm:
    """A fast-v2 form: `proba(values)` is the generated function itself."""

    def __init__(self, code: CodeType, constants: dict[str, Any]) -> None:
        namespace = {**constants, **RUNTIME}
        exec(code, namespace)  # noqa: S102 - our own code, written from checked numbers
        self.proba: Callable[[Sequence[Any]], float] = namespace["proba"]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> GeneratedForm:
        source, constants = function_source(data)
        return cls(compile(source, "<fast form>", "exec"), constants)


def load_form(data: dict[str, Any]) -> Form:
    """The evaluator of a fast form's JSON; ValueError when it is not one we can read."""
    fmt = data.get("format")
    if fmt == LINEAR_V1:
        return LinearForm(data)
    if fmt != FORMAT:
        raise ValueError(f"unknown fast-form format {fmt!r}")
    return GeneratedForm.from_data(data)


def load_form_file(path: Path, sha256: str, cache_dir: Path | None) -> Form:
    """The evaluator of fast.json at `path` (whose checked sha256 is given), compiled at most
    once per Python version when `cache_dir` is writable."""
    cache = CodeCache(cache_dir, sha256) if cache_dir is not None else None
    cached = cache.read() if cache is not None else None
    if cached is not None:
        return GeneratedForm(*cached)
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        return load_form(data)
    source, constants = function_source(data)
    code = compile(source, "<fast form>", "exec")
    if cache is not None and len(source) >= CACHE_FROM_CHARS:
        cache.write(code, constants)
    return GeneratedForm(code, constants)


class CodeCache:
    """The compiled code of one fast form and its constants, in `directory`.

    Named by the fast form's sha256 and the sha256 of this package's own source (the code that
    writes the function), and starting with this interpreter's bytecode magic number: another
    form, another version of this package or another Python never reads it. Writing removes the
    cache of any other fast form (a rebuilt artifact), and keeps those of other versions of this
    package and other Pythons, which may share the artifact during a deploy. It is trusted as
    Python trusts its own __pycache__: whoever can write the artifact's directory can change the
    model anyway. A read-only directory (a Lambda package, which is built with its cache
    filled: scripts/build_lambda_package.py) just means compiling at every load.
    """

    def __init__(self, directory: Path, form_sha256: str) -> None:
        self.form = form_sha256[:16]
        self.path = directory / f"fast-{self.form}-{_generator_digest()[:16]}.{sys.implementation.cache_tag}.bin"
        self.magic = importlib.util.MAGIC_NUMBER

    def read(self) -> tuple[CodeType, dict[str, Any]] | None:
        try:
            blob = self.path.read_bytes()
            if not blob.startswith(self.magic):
                return None
            code, constants = marshal.loads(blob[len(self.magic) :])
        except (OSError, ValueError, EOFError, TypeError):
            return None  # missing, or damaged: compiled again
        if not isinstance(code, CodeType) or not isinstance(constants, dict):
            return None
        return code, constants

    def write(self, code: CodeType, constants: dict[str, Any]) -> None:
        try:
            blob = self.magic + marshal.dumps((code, constants))
        except ValueError:
            return  # a constant marshal cannot keep: compiled at each load instead
        try:
            folder = self.path.parent
            folder.mkdir(exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=self.path.name, suffix=".tmp", delete=False) as f:
                f.write(blob)
            os.chmod(f.name, 0o644)  # mkstemp makes files private; whoever serves the artifact reads it
            os.replace(f.name, self.path)
            for stale in folder.glob("fast-*.bin"):
                if not stale.name.startswith(f"fast-{self.form}-"):
                    stale.unlink()  # the code of a fast form this artifact no longer has
        except OSError:
            pass  # a read-only artifact: compiled again next time


def _generator_digest() -> str:
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()


def function_source(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The Python source of `def proba(row)` for a fast-v2 form, and the constants it names."""
    family = FAMILIES.get(data.get("family", ""))
    if family is None:
        raise ValueError(f"unknown model family {data.get('family')!r}")
    steps = StepSource(data["inputs"], data["steps"])
    outputs = [int(o) for o in data["outputs"]]
    for output in outputs:
        steps.slot(output)  # checked: an index that exists
    model = data["model"]
    code = family.source(model, steps, outputs)
    body = steps.lines(family.needed(model, steps, outputs)) + code
    return "def proba(row):\n" + "".join(f" {line}\n" for line in body), steps.namespace
