"""Notebook 07's explorer (camlib.widgets.render_beyond / beyond_explorer): every method renders,
the readout scores the map on the object mask, controls that do not apply are disabled."""

from __future__ import annotations

import pytest
import torch

import camlib
from camlib import widgets


@pytest.fixture(scope="module")
def course():
    thread = camlib.data.thread()
    return camlib.models.load_model("gap"), thread.images[:3], thread.masks[:3]


@pytest.mark.parametrize("method", list(widgets.BEYOND_METHODS))
def test_every_method_renders_and_scores(course, method):
    model, images, masks = course
    png, text = widgets.render_beyond(model, images, index=1, method=method, masks=masks, noise_level=0.1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert text.startswith(method) and "energy inside" in text and "pointing game" in text
    if method == "Eigen-CAM":
        assert "the same map for every class" in text


def test_the_readout_matches_camlib_metrics(course):
    model, images, masks = course
    _, text = widgets.render_beyond(model, images, index=2, method="HiResCAM", layer="features", masks=masks)
    res = camlib.hires_cam(model, images[2:3], "features")
    energy = float(camlib.metrics.energy_inside(res, masks[2:3]).mean)
    assert f"energy inside {energy:.2f}" in text


def test_explorer_controls(course):
    model, images, masks = course
    explorer = widgets.beyond_explorer(model, images, masks=masks)
    assert explorer.render_count == 1 and "guided backprop" in explorer.readout.value
    assert explorer.controls["layer"].disabled and explorer.controls["noise_level"].disabled
    explorer.controls["method"].value = "SmoothGrad"
    assert explorer.controls["layer"].disabled and not explorer.controls["noise_level"].disabled
    explorer.controls["method"].value = "LayerCAM"
    assert not explorer.controls["layer"].disabled and explorer.controls["noise_level"].disabled
    explorer.controls["layer"].value = "features.4"
    assert "at features.4" in explorer.readout.value and explorer.render_count == 4
    assert explorer.static == {"method": None}


def test_bad_method_and_masks(course):
    model, images, masks = course
    with pytest.raises(ValueError, match="method must be one of"):
        widgets.render_beyond(model, images, method="RISE")
    with pytest.raises(ValueError, match="one mask per image"):
        widgets.render_beyond(model, images, masks=masks[:1])
    with pytest.raises(ValueError, match="out of range"):
        widgets.render_beyond(model, images, index=7)
