"""camlib.plotting: overlay is the stated blend, grids have one panel per map, PNGs are deterministic."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from camlib import plotting


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    return width, height


def test_to_display_layouts_agree():
    g = torch.Generator().manual_seed(0)
    chw = torch.rand(3, 5, 7, generator=g)
    hwc = chw.permute(1, 2, 0).numpy()
    expected = hwc.astype(np.float64)
    np.testing.assert_array_equal(plotting.to_display(chw), expected)
    np.testing.assert_array_equal(plotting.to_display(chw[None]), expected)
    np.testing.assert_array_equal(plotting.to_display(hwc), expected)
    grey = plotting.to_display(chw[0])
    assert grey.shape == (5, 7, 3)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])


def test_to_display_rescales_out_of_range_images_with_minmax():
    x = torch.tensor([[[-2.0, 0.0], [1.0, 2.0]]]).repeat(3, 1, 1)
    out = plotting.to_display(x)
    np.testing.assert_allclose(out[..., 0], [[0.0, 0.5], [0.75, 1.0]])
    assert plotting.to_display(torch.full((3, 2, 2), 7.0)).max() == 0.0


def test_to_display_errors_say_what_to_do():
    with pytest.raises(ValueError, match="index it first"):
        plotting.to_display(torch.rand(2, 3, 4, 4))
    with pytest.raises(TypeError, match="torch.Tensor or a numpy array"):
        plotting.to_display([[0.0]])
    with pytest.raises(ValueError, match="NaN"):
        plotting.to_display(torch.full((3, 2, 2), float("nan")))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_overlay_is_the_stated_blend(alpha):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 6, 6, generator=g)
    cam = torch.rand(6, 6, generator=g) * 5 - 1
    out = plotting.overlay(image, cam, alpha=alpha, cmap="viridis")
    m = cam.double().numpy()
    norm = (m - m.min()) / (m.max() - m.min())
    colours = matplotlib.colormaps["viridis"](norm)[..., :3]
    expected = (1 - alpha) * image.permute(1, 2, 0).double().numpy() + alpha * colours
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_overlay_upsamples_like_bilinear_interpolate_and_handles_constant_maps():
    image = torch.zeros(3, 8, 8)
    small = torch.arange(4.0).view(2, 2)
    up = torch.nn.functional.interpolate(small[None, None].double(), size=(8, 8), mode="bilinear", align_corners=False)[0, 0]
    norm = ((up - up.min()) / (up.max() - up.min())).numpy()
    out = plotting.overlay(image, small, alpha=1.0, cmap="gray")
    np.testing.assert_allclose(out[..., 0], matplotlib.colormaps["gray"](norm)[..., 0], atol=1e-12)
    flat = plotting.overlay(image, torch.ones(2, 2), alpha=1.0, cmap="gray")
    np.testing.assert_allclose(flat, 0.0)  # constant map -> zeros -> the colormap's lowest colour


def test_overlay_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\]"):
        plotting.overlay(torch.rand(3, 4, 4), torch.rand(4, 4), alpha=1.5)
    with pytest.raises(ValueError, match="unknown colormap"):
        plotting.overlay(torch.rand(3, 4, 4), torch.rand(4, 4), cmap="no-such-map")
    with pytest.raises(ValueError, match="one map, not a batch"):
        plotting.overlay(torch.rand(3, 4, 4), torch.rand(2, 4, 4))


def test_show_maps_one_panel_per_map_and_no_pyplot_figure():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    images = torch.rand(5, 3, 8, 8)
    maps = torch.rand(5, 4, 4)
    fig = plotting.show_maps(images, maps, titles=list("abcde"), ncols=3)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 5 and len(fig.axes) == 6
    assert [ax.get_title() for ax in panels] == list("abcde")
    np.testing.assert_allclose(panels[2].images[0].get_array(), plotting.overlay(images[2], maps[2]))
    assert plt.get_fignums() == before  # nothing registered with pyplot: no duplicate display
    with pytest.raises(ValueError, match="one title per map"):
        plotting.show_maps(images, maps, titles=["x"])
    with pytest.raises(ValueError, match="N = 5"):
        plotting.show_maps(images[:2], maps)
    one = plotting.show_maps(images[0], maps)  # one image broadcast to all maps
    assert len([ax for ax in one.axes if ax.images]) == 5


def test_figure_to_png_is_deterministic_and_sized_by_dpi():
    fig = Figure(figsize=(2, 1))
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    a = plotting.figure_to_png(fig, dpi=50)
    assert a == plotting.figure_to_png(fig, dpi=50)
    assert _png_size(a) == (100, 50)
    with pytest.raises(TypeError, match="matplotlib.figure.Figure"):
        plotting.figure_to_png(io.BytesIO())
