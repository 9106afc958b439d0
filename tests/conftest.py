"""Test-suite hooks and fixtures shared by all of tests/.

Every test module runs on one torch intra-op thread (``single_thread``, autouse); ``gap_model``
and ``two_images`` are the tiny float64 network and batch of ``tiny_nets`` that most unit tests
use.

Items marked ``after_notebooks`` run after every other item of the session, so that a test that
reads the notebooks' outputs (tests/test_notebook_standards.py) comes after nbval has executed the
notebooks collected from ``notebooks/`` in the same run, and can use those outputs instead of
executing the notebooks a second time.
"""

from __future__ import annotations

import pytest
import torch

from tiny_nets import gap_net, images

# keeps the notebooks nbval executes, for the course website (issue 18; see tests/site_capture.py)
pytest_plugins = ["site_capture"]


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: run after the notebooks' nbval items of the session")


def pytest_collection_modifyitems(session, config, items):
    later = [item for item in items if item.get_closest_marker("after_notebooks") is not None]
    if later:
        items[:] = [item for item in items if item.get_closest_marker("after_notebooks") is None] + later


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run each test module on one intra-op thread, then restore the previous setting.

    Tiny tensors gain nothing from threads and, on a loaded 2-core machine, OpenMP
    synchronisation makes each op 20-40x slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def gap_model():
    """A fresh eval-mode float64 mean-GAP network (``features`` -> GAP -> ``fc``, 4 classes)."""
    return gap_net(seed=1)


@pytest.fixture
def two_images():
    """Two random float64 RGB images of 8 x 8 pixels."""
    return images(n=2, size=8)
