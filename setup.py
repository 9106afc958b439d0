"""What pyproject.toml cannot state: the package layout and the package index's description page.

**Packages.** camlib with every subpackage and data folder under ``camlib/`` (found, so that a
new folder of weights or annotations ships without a change here), plus the course: the
repository's ``notebooks/`` folder becomes the package ``camlib._notebooks`` (and its
``student/`` folder ``camlib._notebooks.student``), which ``python -m camlib.course`` copies out.
The files that go in are the ones MANIFEST.in puts into the sdist.

**Description page.** README.md links to the repository's files by relative paths (``notebooks/04_grad_cam.ipynb``,
``figures/overview.png``), which work on the repository's web page but lead nowhere on a package
index. The long description is README.md with every relative link made absolute against the
``Repository`` URL of ``[project.urls]``: images point at the raw file, other paths at the file
(or folder) view of the default branch, and in-page anchors (``#set-up``), which a package index
page does not provide, at the same section of the README on the repository's page. Everything
else is configured in pyproject.toml.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from setuptools import find_namespace_packages, setup

if sys.version_info >= (3, 11):
    import tomllib
else:  # build-system.requires installs tomli for Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|/)", re.I)


def absolute_links(markdown: str, repository: str, root: Path = HERE) -> str:
    """``markdown`` with each relative link or image made absolute against ``repository``."""
    owner_repo = repository.rstrip("/").split("github.com/", 1)[1]

    def rewrite(match: re.Match) -> str:
        target = match["target"]
        if _ABSOLUTE.match(target):
            return match[0]
        path, _, anchor = target.partition("#")
        if not path:
            url = f"{repository.rstrip('/')}#{anchor}"
        elif match["bang"]:
            url = f"https://raw.githubusercontent.com/{owner_repo}/HEAD/{path}"
        else:
            view = "tree" if (root / path).is_dir() else "blob"
            url = f"{repository.rstrip('/')}/{view}/HEAD/{path}" + (f"#{anchor}" if anchor else "")
        return f"{match['bang']}[{match['text']}]({url}{match['title'] or ''})"

    return _LINK.sub(rewrite, markdown)


def long_description() -> str:
    project = tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    return absolute_links(readme, project["urls"]["Repository"])


NOTEBOOK_PACKAGES = {"camlib._notebooks": "notebooks", "camlib._notebooks.student": "notebooks/student"}


def packages() -> list[str]:
    found = find_namespace_packages(where=str(HERE), include=["camlib", "camlib.*"], exclude=["*__pycache__*"])
    return sorted(found) + list(NOTEBOOK_PACKAGES)


setup(
    packages=packages(),
    package_dir={"camlib._notebooks": "notebooks"},
    long_description=long_description(),
    long_description_content_type="text/markdown",
)
