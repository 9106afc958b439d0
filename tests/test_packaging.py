"""The course as pip, PyPI and Binder meet it: the distribution's name, metadata and description
page; the sdist and the wheel built by ``python -m build`` and checked by ``twine check``; the
dependency layers (``import camlib`` needs no Jupyter); ``python -m camlib.course`` from the
wheel in a clean virtual environment; ``python -m camlib.training`` writing only where told;
and the Binder set-up as repo2docker's own code reads it (docker is not available here).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from distribution import DISTRIBUTION, ROOT, built_distributions, clean_env, clean_venv, project_files

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REPOSITORY = PROJECT["urls"]["Repository"]
LIBRARY = {"torch", "torchvision", "numpy", "matplotlib", "scikit-image"}
NOT_IN_SDIST = {".github"}  # the repository host's configuration, not part of the project's source
JUPYTER = ("ipywidgets", "IPython", "ipykernel", "jupyter_core", "jupyter_client", "jupyterlab",
           "jupyter_server", "notebook", "nbformat", "comm", "widgetsnbextension")


def _metadata(wheel: Path) -> tuple[dict[str, list[str]], str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(zf.read(name).decode())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return fields, message.get_payload()


# --- name, metadata, description page ------------------------------------------------------------


def test_distribution_name_version_and_urls():
    import camlib

    assert PROJECT["name"] == DISTRIBUTION == "explaining-cnns"
    assert PROJECT["version"] == camlib.__version__
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY), REPOSITORY
    assert all(url.startswith(REPOSITORY) for url in PROJECT["urls"].values())


def test_build_and_twine_check():
    sdist, wheel = built_distributions()
    assert sdist.name == f"explaining_cnns-{PROJECT['version']}.tar.gz"
    assert wheel.name == f"explaining_cnns-{PROJECT['version']}-py3-none-any.whl"
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_description_page_links_are_absolute_and_lead_to_files():
    _, wheel = built_distributions()
    fields, description = _metadata(wheel)
    assert fields["Description-Content-Type"] == ["text/markdown"]
    targets = re.findall(r"\]\(([^)\s]+)", description)
    assert len(targets) >= 10, "the description lost the README's links"
    owner_repo = REPOSITORY.split("github.com/", 1)[1]
    prefixes = (f"{REPOSITORY}/blob/HEAD/", f"{REPOSITORY}/tree/HEAD/",
                f"https://raw.githubusercontent.com/{owner_repo}/HEAD/")
    for target in targets:
        assert re.match(r"^(https?:|mailto:)", target), f"relative link on the package index page: {target}"
        for prefix in prefixes:
            if target.startswith(prefix):
                path = target[len(prefix):].split("#", 1)[0]
                assert (ROOT / path).exists(), f"the description links to a missing file: {path}"
    assert "(figures/" not in description and "(notebooks/" not in description


def test_sdist_holds_the_project_and_its_tests_collect(tmp_path):
    sdist, _ = built_distributions()
    with tarfile.open(sdist) as tar:
        top = f"explaining_cnns-{PROJECT['version']}/"
        members = {m.name[len(top):] for m in tar.getmembers() if m.isfile()}
        tar.extractall(tmp_path, filter="data") if sys.version_info >= (3, 12) else tar.extractall(tmp_path)
    missing = sorted(str(p) for p in project_files() if p.as_posix() not in members and p.parts[0] not in NOT_IN_SDIST)
    assert not missing, f"the sdist lacks project files (add them to MANIFEST.in): {missing}"
    for needed in ("tests/tiny_nets.py", "tests/notebook_sections.py", "tests/browser/conftest.py"):
        assert needed in members
    root = tmp_path / top
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert re.search(r"^\d+ tests collected", collected.stdout, re.M), collected.stdout[-500:]


def test_wheel_holds_camlib_its_data_and_the_notebooks():
    _, wheel = built_distributions()
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    for rel in project_files():
        if rel.parts[0] == "camlib" and rel.suffix not in {".pyc"}:
            assert rel.as_posix() in names, f"{rel} is not in the wheel"
        if rel.parts[0] == "notebooks" and rel.suffix == ".ipynb":
            assert ("camlib/_notebooks/" + "/".join(rel.parts[1:])) in names, f"{rel} is not in the wheel"
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "site/"))]


def test_dependency_layers():
    _, wheel = built_distributions()
    fields, _ = _metadata(wheel)
    requirements = [Requirement(text) for text in fields["Requires-Dist"]]
    library = {r.name for r in requirements if r.marker is None}
    assert library == LIBRARY, "the library needs only PyTorch, numpy, matplotlib and scikit-image"
    extras = {}
    for r in requirements:
        if r.marker is not None:
            extra = re.search(r'extra == "(\w+)"', str(r.marker)).group(1)
            extras.setdefault(extra, set()).add(r.name)
    assert extras["course"] == {"ipywidgets", "jupyterlab"}
    assert extras["widgets"] == {"ipywidgets"}
    assert {"pytest", "nbval", "nbgrader", "build", "twine", "captum", "grad-cam"} <= extras["test"]


def test_import_camlib_loads_nothing_of_jupyter():
    code = (
        "import sys, camlib, camlib.models, camlib.data, camlib.metrics, camlib.axioms, camlib.plotting\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({JUPYTER!r})), 'camlib.course' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] False", f"import camlib loaded {out.strip()} (Jupyter modules; camlib.course loaded?)"


def test_widgets_without_ipywidgets_name_the_extra():
    code = (
        "import sys\n"
        "sys.modules['ipywidgets'] = None  # as if ipywidgets were not installed\n"
        "try:\n"
        "    import camlib.widgets\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f'pip install "{DISTRIBUTION}[course]"' in out, out


# --- the course from pip ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_course_from_the_wheel_in_a_clean_venv(tmp_path):
    """pip install the wheel with the course extra, copy the notebooks, serve them in JupyterLab."""
    _, wheel = built_distributions()
    python = clean_venv(tmp_path / "venv", share_jupyter=True)
    env = clean_env(OMP_NUM_THREADS="1")
    run = dict(cwd=tmp_path, env=env, capture_output=True, text=True)
    missing = subprocess.run([str(python), "-c", "import camlib"], **run)
    assert missing.returncode != 0, "the clean environment must not see the repository's camlib"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--find-links",
                                str(wheel.parent), f"{DISTRIBUTION}[course]"], **run)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert "Successfully installed explaining-cnns" in installed.stdout

    folder = tmp_path / "my course"
    first = subprocess.run([str(python), "-m", "camlib.course", str(folder), "--copy-only"], **run)
    assert first.returncode == 0, first.stderr
    masters = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in folder.glob("*.ipynb")) == masters
    assert sorted(p.name for p in (folder / "student").glob("*.ipynb")) == masters
    assert (folder / masters[0]).read_bytes() == (ROOT / "notebooks" / masters[0]).read_bytes()

    edited = folder / masters[1]
    edited.write_text(edited.read_text().replace('"cells": [', '"cells": [ ', 1))
    mine = edited.read_bytes()
    again = subprocess.run([str(python), "-m", "camlib.course", str(folder), "--copy-only"], **run)
    assert again.returncode == 0 and f"kept your edited {masters[1]}" in again.stdout, again.stdout
    assert edited.read_bytes() == mine, "a learner's edited notebook was overwritten"
    forced = subprocess.run([str(python), "-m", "camlib.course", str(folder), "--copy-only", "--overwrite"], **run)
    assert forced.returncode == 0 and "replaced your edited" in forced.stdout, forced.stdout
    (backup,) = folder.glob(f"{Path(masters[1]).stem}.backup-*.ipynb")
    assert backup.read_bytes() == mine and edited.read_bytes() != mine

    port, token = _free_port(), "camlib-course-test"
    server = subprocess.Popen(
        [str(python), "-m", "camlib.course", str(folder), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         "--LanguageServerManager.autodetect=False"],
        cwd=tmp_path, env={**env, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read().decode(errors="replace") if server.poll() is not None else ""
                raise AssertionError(f"python -m camlib.course did not start JupyterLab:\n{output[-3000:]}")
            time.sleep(0.5)
        status, body = _get(f"{base}/api/contents/{masters[0]}?token={token}")
        assert status == 200 and json.loads(body)["type"] == "notebook"
        status, page = _get(f"{base}/lab/tree/{masters[0]}?token={token}")
        assert status == 200 and b"JupyterLab" in page
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # the installed package's weights are never retrained in place
    site = subprocess.run([str(python), "-c", "import camlib.models as m; print(m.WEIGHTS_DIR)"], **run).stdout.strip()
    refused = subprocess.run([str(python), "-m", "camlib.training", "--only", "gap", "--out", site], **run)
    assert refused.returncode == 2 and "refusing to write" in refused.stderr, refused.stderr[-2000:]
    no_folder = subprocess.run([str(python), "-m", "camlib.training"], **run)
    assert no_folder.returncode == 2 and "--out" in no_folder.stderr


def test_course_copy_keeps_edits_and_updates_unedited_copies(tmp_path):
    from camlib import course

    source = tmp_path / "pkg"
    (source / "student").mkdir(parents=True)
    for name in ("00_a.ipynb", "01_b.ipynb"):
        (source / name).write_text(f"{name} v1")
        (source / "student" / name).write_text(f"student {name} v1")
    folder = tmp_path / "work"
    report = course.copy_course(folder, source=source)
    assert sorted(report.copied) == ["00_a.ipynb", "01_b.ipynb", "student/00_a.ipynb", "student/01_b.ipynb"]
    assert report.first_notebook == folder.resolve() / "00_a.ipynb"
    (folder / "01_b.ipynb").write_text("my answers")
    for name in ("00_a.ipynb", "01_b.ipynb"):
        (source / name).write_text(f"{name} v2")  # a new release
    report = course.copy_course(folder, source=source)
    assert report.updated == ["00_a.ipynb"] and report.kept == ["01_b.ipynb"]
    assert (folder / "00_a.ipynb").read_text() == "00_a.ipynb v2"
    assert (folder / "01_b.ipynb").read_text() == "my answers"
    report = course.copy_course(folder, source=source)  # still edited: still kept
    assert report.kept == ["01_b.ipynb"]


def test_course_launcher_command_allows_root_only_for_root(monkeypatch, tmp_path):
    from camlib import course

    for uid, expected in ((0, True), (1000, False)):
        monkeypatch.setattr(os, "geteuid", lambda uid=uid: uid)
        args = course.lab_command(tmp_path, tmp_path / "00_a.ipynb", ["--no-browser"])
        assert ("--ServerApp.allow_root=True" in args) is expected
        assert args[1:3] == ["-m", "jupyterlab"] and args[-2:] == ["--no-browser", str(tmp_path / "00_a.ipynb")]


# --- python -m camlib.training ----------------------------------------------------------------------


def test_training_writes_only_where_told_and_keeps_other_entries(tmp_path, capsys):
    import sysconfig

    from camlib import training

    with pytest.raises(SystemExit) as exit_info:
        training.main(["--only", "gap"])
    assert exit_info.value.code == 2 and "--out" in capsys.readouterr().err
    site = Path(sysconfig.get_paths()["purelib"]) / "camlib" / "weights"
    with pytest.raises(ValueError, match="site-packages"):
        training.regenerate(("gap",), out_dir=site, verbose=False)
    assert not site.exists() or "gap.pt" not in os.listdir(site)
    # a third-party entry (O-Net's) in weights.json survives retraining the course models
    other = {"onet": {"file": "onet.pt", "sha256": "0" * 64, "source": "facenet-pytorch"}}
    (tmp_path / "weights.json").write_text(json.dumps(other))
    tiny = training.TrainConfig(n_train=32, epochs=1, batch_size=16)
    training.regenerate(("gap",), out_dir=tmp_path, verbose=False, configs={"gap": tiny})
    written = json.loads((tmp_path / "weights.json").read_text())
    assert written["onet"] == other["onet"] and set(written) == {"onet", "gap"}


# --- Binder -----------------------------------------------------------------------------------------


def test_binder_builds_with_pinned_python_and_installs_after_copying(monkeypatch, tmp_path):
    """repo2docker's own detection and Dockerfile rendering on this repository (no docker needed)."""
    from repo2docker.app import Repo2Docker
    from repo2docker.buildpacks import PythonBuildPack

    monkeypatch.chdir(ROOT)
    app = Repo2Docker()
    picked = next(bp for bp in (BP(base_image=app.base_image) for BP in app.buildpacks) if bp.detect())
    assert type(picked) is PythonBuildPack
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    locked = re.search(r"^# recorded on Python (\d+\.\d+)", (ROOT / "requirements" / "constraints.txt").read_text(), re.M)
    assert runtime == f"python-{locked.group(1)}", "Binder's Python is the one the constraints were recorded on"
    assert picked.python_version == locked.group(1) and picked._python_version_source == "runtime"
    assert picked.get_preassemble_scripts() == [], "nothing may be pip-installed before the repository is copied"
    picked.platform = "linux/amd64"
    dockerfile = picked.render({"NB_USER": "jovyan", "NB_UID": "1000"}).splitlines()
    copy_repo = next(i for i, line in enumerate(dockerfile) if re.match(r"COPY .*src/ \$\{REPO_DIR\}/?$", line))
    install = next(i for i, line in enumerate(dockerfile) if 'pip install --no-cache-dir -r "binder/requirements.txt"' in line)
    workdir = max(i for i, line in enumerate(dockerfile[:install]) if line.startswith("WORKDIR"))
    assert copy_repo < install and dockerfile[workdir] == "WORKDIR ${REPO_DIR}"
    base_env = [Path(src).name for src in picked.get_build_script_files() if "environment.py-" in src]
    assert base_env == [f"environment.py-{locked.group(1)}-linux-64.lock"], base_env
    # pip, run from the repository root as repo2docker does, reads the file as meant: the course
    # extra of this project, with the constraints found
    report = tmp_path / "pip-report.json"
    dry = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps", "--no-build-isolation",
         "--quiet", "--report", str(report), "-r", "binder/requirements.txt"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    (item,) = json.loads(report.read_text())["install"]
    assert item["metadata"]["name"] == DISTRIBUTION and item["requested_extras"] == ["course"]
    assert item["download_info"]["url"] == ROOT.as_uri()


def test_readme_binder_and_colab_links_point_at_the_repository():
    readme = (ROOT / "README.md").read_text()
    owner_repo = REPOSITORY.split("github.com/", 1)[1]
    binder = re.findall(r"\]\(https://mybinder\.org/v2/gh/([^/\s)]+/[^/\s)]+)/(\w+)\?urlpath=([^\s)]+)\)", readme)
    assert binder, "the README has no Binder badge"
    for repo, ref, urlpath in binder:
        assert repo == owner_repo
        path = urlpath.split("lab/tree/", 1)[1]
        assert (ROOT / path).is_file(), f"the Binder link opens a missing file: {path}"
    colab = re.findall(r"\]\(https://colab\.research\.google\.com/github/([^\s)]+)\)", readme)
    assert colab, "the README has no Colab link"
    for rest in colab:
        assert rest.startswith(f"{owner_repo}/blob/main/"), rest
        assert (ROOT / rest.split("/blob/main/", 1)[1]).is_file(), rest
