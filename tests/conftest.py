"""Test-suite hooks shared by all of tests/.

Items marked ``after_notebooks`` run after every other item of the session, so that a test that
reads the notebooks' outputs (tests/test_notebook_standards.py) comes after nbval has executed the
notebooks collected from ``notebooks/`` in the same run, and can use those outputs instead of
executing the notebooks a second time.
"""

from __future__ import annotations

# keeps the notebooks nbval executes, for the course website (issue 18; see tests/site_capture.py)
pytest_plugins = ["site_capture"]


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: run after the notebooks' nbval items of the session")


def pytest_collection_modifyitems(session, config, items):
    later = [item for item in items if item.get_closest_marker("after_notebooks") is not None]
    if later:
        items[:] = [item for item in items if item.get_closest_marker("after_notebooks") is None] + later
