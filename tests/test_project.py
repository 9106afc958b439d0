"""The project's own promises: environment files agree, notebooks are committed cleared and
follow the course skeleton, the README documents what exists, CI calls the README command."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONDA_TO_PYPI = {"pytorch": "torch"}
SKELETON = [
    "Learning objectives",
    "Intuition",
    "The mathematics",
    "Build it from scratch",
    "Check it against camlib",
    "Explore it",
    "Exercises",
    "Summary",
    "References",
]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements(specs: list[str]) -> dict[str, str]:
    reqs = [Requirement(spec) for spec in specs]
    return {r.name.lower(): str(r.specifier) for r in reqs}


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "explaining-cnns"
    assert env["channels"] == ["conda-forge"]
    conda_specs, pip_section = [], None
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip_section = item["pip"]
        else:
            conda_specs.append(item)
    conda = {}
    for spec in conda_specs:
        req = Requirement(spec)
        conda[CONDA_TO_PYPI.get(req.name, req.name).lower()] = str(req.specifier)
    project = _pyproject()["project"]
    assert conda.pop("python") == project["requires-python"]
    assert conda.pop("pip") == ""
    expected = _requirements(project["dependencies"] + project["optional-dependencies"]["course"])
    assert conda == expected, "environment.yml and pyproject.toml (dependencies + course extra) disagree"
    # unquoted, so that tools that parse the file (repo2docker among them) see a local install
    assert pip_section == ["-e .[course]"], pip_section


def _locked_python() -> str:
    text = (ROOT / "requirements" / "constraints.txt").read_text()
    match = re.search(r"^# recorded on Python (\d+\.\d+)", text, re.M)
    assert match, "constraints.txt does not say which Python it was recorded on: run python3 course.py lock"
    return match.group(1)


def test_constraints_pin_every_dependency_within_its_bounds():
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = Version(version)
    project = _pyproject()["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    # the pins are for the Python they were recorded on, whichever Python runs this test
    marker_env = {"python_version": _locked_python(), "python_full_version": _locked_python() + ".0"}
    for spec in specs:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate(marker_env):
            continue
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements/constraints.txt (run python3 course.py lock)"
        assert pins[name] in req.specifier, f"{name}=={pins[name]} violates {req.specifier}"


def test_notebooks_are_numbered_consecutively_from_00():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert numbers == [f"{i:02d}" for i in range(len(NOTEBOOKS))], numbers


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_cleared(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: commit notebooks without outputs"
            assert cell["execution_count"] is None, f"{path.name}: commit notebooks without execution counts"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_skeleton(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    headings = [
        line.lstrip("#").strip()
        for cell in nb["cells"]
        if cell["cell_type"] == "markdown"
        for line in "".join(cell["source"]).splitlines()
        if line.startswith("#")
    ]
    positions = []
    for section in SKELETON:
        found = [i for i, h in enumerate(headings) if h.lower().startswith(section.lower())]
        assert found, f"{path.name} has no section '{section}'"
        positions.append(found[0])
    assert positions == sorted(positions), f"{path.name}: sections out of order"
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    # A claim is checked by a bare assert or by camlib.exercises' claim / check_close, which assert and print.
    checked = re.search(r"^\s*assert\b|\b(claim|check_close)\(", code, re.M)
    assert checked, f"{path.name} checks no claim (assert, claim(...) or check_close(...))"


def test_readme_lists_every_notebook_and_both_commands():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in readme, f"README does not list {path.name}"
    assert "python3 course.py lab" in readme
    assert "python3 course.py test" in readme


def test_ci_runs_exactly_the_readme_test_command():
    lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [l for l in lines if l and not l.startswith("#") and not l.startswith("set ")]
    assert commands[-1] == "exec python3 course.py test", commands


def test_every_notebook_has_its_key_figure_module():
    from camlib.figures import FIGURES

    for path in NOTEBOOKS:
        assert path.stem in FIGURES
        module = ROOT / "camlib" / "figures" / f"{FIGURES[path.stem]}.py"
        assert module.exists(), f"no key figure module for {path.name}"
        assert (ROOT / "figures" / f"{path.stem}.png").exists(), "run python3 course.py figures"


def _floor(spec: str) -> str:
    (floor,) = [s.version for s in Requirement(spec).specifier if s.operator == ">="]
    return floor


def test_floors_are_stated_once_and_agree():
    """pyproject.toml holds the floors; course.py's check and the README's table follow it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    project = _pyproject()["project"]
    assert project["requires-python"] == ">={}.{}".format(*course.MIN_PYTHON)
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    rows = dict(
        (m.group(1).lower(), (m.group(2), m.group(3)))
        for m in re.finditer(r"^\| `?([\w-]+)`? \| ([\d.]+) \| ([\d.]+) \|", (ROOT / "README.md").read_text(), re.M)
    )
    assert rows.get("python") == (project["requires-python"][2:], _locked_python()), rows.get("python")
    for req_spec in project["dependencies"] + project["optional-dependencies"]["course"]:
        name = Requirement(req_spec).name.lower()
        assert name in rows, f"the README's version table has no row for {name}"
        assert rows[name] == (_floor(req_spec), pins[name]), (name, rows[name], _floor(req_spec), pins[name])


def test_every_test_named_in_docs_math_exists():
    """docs/math.md's §13 names the test of each identity: `tests/file.py::name` or `::name` (same file)."""
    text = (ROOT / "docs" / "math.md").read_text(encoding="utf-8")
    missing, checked = [], 0
    for row in text.splitlines():
        current = None
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)", row):
            current = path or current
            if current is None:
                missing.append(f"::{name} (no file named before it in: {row[:60]}...)")
                continue
            source = ROOT / current
            checked += 1
            if not source.exists() or not re.search(rf"^def {name}\b", source.read_text(encoding="utf-8"), re.M):
                missing.append(f"{current}::{name}")
    assert checked > 50, f"only {checked} test names found in docs/math.md"
    assert not missing, "docs/math.md names tests that do not exist:\n" + "\n".join(missing)
