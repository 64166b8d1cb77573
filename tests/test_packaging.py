"""What the package declares: every library nubo imports is a dependency.

A library that only arrives as another's dependency can vanish with that
other's next release; nubo then fails at import on a fresh install.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "nubo"


def _imported_modules() -> set[str]:
    """The top-level names every module of src/nubo imports."""
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add((node.module or "").split(".")[0])
    return names


def _declared() -> set[str]:
    """The distributions pyproject.toml lists as dependencies, normalized."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        _normalize(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])
        for requirement in project["dependencies"]
    }


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_a_declared_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    third_party = {
        name
        for name in _imported_modules()
        if name
        and name != "nubo"
        and name not in sys.stdlib_module_names
        and name != "__future__"
    }
    undeclared = {
        name
        for name in third_party
        if not declared & {_normalize(d) for d in distributions.get(name, [name])}
    }
    assert undeclared == set()
    assert "publicsuffix2" in third_party  # authcheck's direct use is seen


def test_hypothesis_database_is_ignored_by_git() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    found = subprocess.run(
        [git, "check-ignore", "-q", ".hypothesis/examples/x"], cwd=ROOT, check=False
    )
    assert found.returncode == 0
