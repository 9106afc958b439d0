"""camlib.widgets without a kernel or a browser.

Each explorer is a pure ``render_*`` function plus a wiring. These tests set every control's value
and check that the explorer's image and readout are exactly what the render function returns for the
new values (so a wiring that stops observing a control fails here), and that the readouts state the
closed forms they claim.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import camlib
from camlib import widgets as W
from camlib.data import make_shapes
from camlib.models import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("gap").eval()


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(3, seed=0, size=32)


def _expected(ex: W.Explorer) -> tuple[bytes, str]:
    png, text = ex.render_fn(**ex.fixed, **ex.params())
    return png, W.readout_html(text)


def assert_in_sync(ex: W.Explorer) -> None:
    png, readout = _expected(ex)
    assert "camlib-error" not in ex.readout.value, ex.readout.value
    assert ex.image.value == png
    assert ex.readout.value == readout


def move(ex: W.Explorer, name: str, value) -> None:
    """Set one control and check that exactly one render wrote the new state into the widgets."""
    image0, readout0, count0 = ex.image.value, ex.readout.value, ex.render_count
    assert ex.controls[name].value != value, f"{name} already has value {value!r}"
    ex.controls[name].value = value
    assert ex.render_count == count0 + 1, f"changing {name} did not re-render"
    assert_in_sync(ex)
    assert ex.image.value != image0, f"changing {name} left the image as it was"
    assert ex.readout.value != readout0, f"changing {name} left the readout as it was"


def assert_css(ex: W.Explorer, kind: str) -> None:
    assert {"camlib-explorer", f"camlib-explorer-{kind}"} <= set(ex._dom_classes)
    assert "camlib-image" in ex.image._dom_classes
    assert "camlib-readout" in ex.readout._dom_classes
    sliders = [c for c in ex.controls.values() if "camlib-slider" in c._dom_classes]
    assert sliders, "every explorer has at least one slider"
    for name, control in ex.controls.items():
        if control in sliders:
            assert f"camlib-slider-{name.replace('_', '-')}" in control._dom_classes
    assert ex.image in ex.children and ex.readout in ex.children


@pytest.fixture(autouse=True)
def no_pyplot_figures_and_no_hooks(model):
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before, "a render left a pyplot figure open"
    for m in model.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks


# ----------------------------------------------------------------------------- wiring, per explorer


def test_feature_maps_explorer(model, shapes):
    ex = W.feature_maps_explorer(model, shapes.images)
    assert_css(ex, "feature-maps")
    assert_in_sync(ex)
    assert ex.controls["channel"].max == 63 and ex.controls["index"].max == 2
    move(ex, "channel", 5)
    move(ex, "index", 2)
    with torch.no_grad():
        acts = model.features(model.norm(shapes.images[2:3]))
    s_k = float(acts[0, 5].sum())
    assert f"s_k = sum A^k = {s_k:.4f}" in ex.readout.value


def test_linear_regression_explorer_readout_is_the_closed_form():
    ex = W.linear_regression_explorer()
    assert_css(ex, "linear-regression")
    assert_in_sync(ex)
    for name, value in [("w1", -1.5), ("w2", 2.5), ("w0", 1.0), ("x1", -2.0), ("x2", 0.7), ("b1", 0.5), ("b2", -1.0)]:
        move(ex, name, value)
    p = ex.params()
    w0, w1, w2, x1, x2, b1, b2 = (p[k] for k in ("w0", "w1", "w2", "x1", "x2", "b1", "b2"))
    y = w0 + w1 * x1 + w2 * x2
    yb = w0 + w1 * b1 + w2 * b2
    text = ex.readout.value
    assert f"= {y:.4f};  y(baseline) = {yb:.4f}" in text
    assert f"dy/dx = ({w1:.4f}, {w2:.4f})" in text
    assert f"w_i x_i = ({w1 * x1:.4f}, {w2 * x2:.4f})" in text
    assert f"w_i (x_i - b_i) = ({w1 * (x1 - b1):.4f}, {w2 * (x2 - b2):.4f})" in text
    assert f"integrated grads    ({w1 * (x1 - b1):.4f}, {w2 * (x2 - b2):.4f});  sum = {y - yb:.4f}" in text


def test_linear_attributions_identities():
    r = W.linear_attributions(0.3, 1.7, -0.4, 2.0, -1.0, 0.5, 0.25)
    np.testing.assert_allclose(r["ig"], r["occlusion"], atol=1e-15)  # linear: IG = occlusion change
    assert math.isclose(r["ig"].sum(), r["y"] - r["y_baseline"], abs_tol=1e-15)  # completeness
    zero_base = W.linear_attributions(0.3, 1.7, -0.4, 2.0, -1.0)
    np.testing.assert_allclose(zero_base["ig"], zero_base["grad_x_input"], atol=1e-15)


def test_occlusion_explorer_counts_forward_passes(model, shapes):
    ex = W.occlusion_explorer(model, shapes.images[0])
    assert_css(ex, "occlusion")
    assert "camlib-slider-patch" in ex.controls["patch"]._dom_classes
    assert_in_sync(ex)
    move(ex, "patch", 6)
    move(ex, "stride", 5)
    move(ex, "baseline", "black")
    move(ex, "baseline", "blur")
    per_axis = math.ceil((32 - 6) / 5) + 1  # 0, 5, ..., until the image is covered
    assert per_axis == W.occlusion_windows(32, 6, 5) == 7
    assert f"windows {per_axis} x {per_axis} = {per_axis**2}; forward passes = {per_axis**2 + 1}" in ex.readout.value
    x = shapes.images[:1]
    attr = camlib.occlusion(model, x, patch=6, stride=5, baseline=W._baseline(x, "blur"))
    assert f"largest score drop y(x) - y(occluded) = {float(attr.extras['windows'].max()):.4f}" in ex.readout.value


def test_cam_explorer_controls_and_capabilities(model, shapes):
    ex = W.cam_explorer(model, shapes.images, methods=("cam", "grad_cam", "grad_cam_pp"))
    assert_css(ex, "cam")
    assert_in_sync(ex)
    assert ex.controls["method"].value == "grad_cam"
    assert [lbl for lbl, _ in ex.controls["target"].options][:2] == ["predicted", "circle"]
    move(ex, "index", 1)
    move(ex, "target", 2)
    assert "class 2 (triangle)" in ex.readout.value
    move(ex, "opacity", 0.8)
    move(ex, "threshold", 0.4)
    move(ex, "score", "softmax")
    inner = next(o for o in ex.controls["layer"].options if o != "features")  # the first ReLU
    move(ex, "layer", inner)
    assert f"at layer {inner}" in ex.readout.value
    move(ex, "method", "cam")  # CAM has no layer or score choice: back to the GAP layer
    assert ex.controls["layer"].value == "features" and ex.controls["layer"].disabled
    assert ex.controls["score"].disabled
    assert "cam at layer features" in ex.readout.value
    move(ex, "method", "grad_cam_pp")
    assert not ex.controls["layer"].disabled and ex.controls["score"].disabled
    assert "explained score logit" in ex.readout.value and "exp(logit)" in ex.readout.value


def test_cam_readout_matches_camlib(model, shapes):
    png, text = W.render_cam(model, shapes.images, index=1, target=3, method="grad_cam", threshold=0.5)
    res = camlib.grad_cam(model, shapes.images[1:2], "features", target=3)
    assert f"explained score logit = {float(res.score[0]):.4f}" in text
    assert f"raw map range [{float(res.raw.min()):.4f}, {float(res.raw.max()):.4f}]" in text
    assert f"positive channel weights {int((res.weights > 0).sum())} of 64" in text
    heat = camlib.normalize(camlib.upsample(res.map, (32, 32)))
    assert f">= 0.50: {float((heat >= 0.5).double().mean()) * 100:.1f} %" in text
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_alpha_explorer_is_eq19():
    ex = W.alpha_explorer(pixels=49)
    assert_css(ex, "alpha")
    assert_in_sync(ex)
    move(ex, "s", 30.0)
    move(ex, "g", 0.2)
    s, g = 30.0, 0.2
    text = ex.readout.value
    assert f"alpha = 1/(2 + s_k g) = {1 / (2 + s * g):.6f}" in text
    assert f"w++ = Z g alpha = {49 * g / (2 + s * g):.6f}" in text
    assert f"W+/2 = {49 * g / 2:.6f}" in text
    assert f"2/(2 + s_k g) = {2 / (2 + s * g):.6f}" in text
    move(ex, "s", 0.0)  # s g = 0: alpha is exactly 1/2 and Grad-CAM++ = Grad-CAM+ / 2
    assert "alpha = 1/(2 + s_k g) = 0.500000" in ex.readout.value
    assert "ratio w++ / (W+/2) = 2/(2 + s_k g) = 1.000000" in ex.readout.value
    with pytest.raises(ValueError, match=">= 0"):
        W.render_alpha(s=-1.0)


def test_alpha_explorer_shows_no_alpha_where_the_gradient_is_not_positive():
    # From the default s_k = 10, the slider's minimum g = -0.2 puts s_k g = -2 on eq. 19's pole, and
    # g = -0.1 gave alpha = 1. Only positive gradients contribute: both weights are 0 and alpha is unused.
    ex = W.alpha_explorer(pixels=49)
    for g in (ex.controls["g"].min, -0.1, 0.0):
        move(ex, "g", g)
        text = ex.readout.value
        assert "camlib-error" not in text
        assert "alpha is not used" in text and "alpha = 1/(2 + s_k g)" not in text
        assert "w++ = Z alpha relu(g) = 0" in text and "W+ = Z relu(g) = 0" in text
        assert "undefined, both weights are 0" in text
    assert ex.controls["g"].min == -0.2 and ex.controls["s"].value == 10.0
    move(ex, "g", 0.005)  # the smallest positive step: alpha is back, just below 1/2
    assert f"alpha = 1/(2 + s_k g) = {1 / (2 + 10.0 * 0.005):.6f}" in ex.readout.value


def test_ig_explorer_reports_camlib_completeness_error(model, shapes):
    ex = W.ig_explorer(model, shapes.images[0], max_steps=32)
    assert_css(ex, "ig")
    assert_in_sync(ex)
    assert list(ex.controls["rule"].options) == list(camlib.quadrature.RULES)
    move(ex, "steps", 4)
    move(ex, "rule", "riemann_left")
    move(ex, "baseline", "grey")
    x = shapes.images[:1]
    attr = camlib.integrated_gradients(model, x, baseline=torch.full_like(x, 0.5), steps=4, rule="riemann_left")
    assert f"completeness error delta = {float(attr.delta[0]):.3e}" in ex.readout.value
    assert f"sum of IG = {float(attr.values.double().sum()):.5f}" in ex.readout.value


def test_comparison_explorer_uses_camlib_metrics(model, shapes):
    ex = W.comparison_explorer(model, shapes.images, shapes.masks, methods=("grad_cam", "cam", "gradient_x_input"))
    assert_css(ex, "comparison")
    assert_in_sync(ex)
    move(ex, "index", 1)
    move(ex, "method", "gradient_x_input")
    attr = camlib.gradient_x_input(model, shapes.images[1:2])
    mask = shapes.masks[1:2]
    energy = float(camlib.metrics.energy_inside(attr, mask).values[0])
    hit = float(camlib.metrics.pointing_game(attr, mask, ties="first").values[0])
    assert f"energy in mask = {energy:.4f}" in ex.readout.value
    assert ("pointing game: hit" if hit == 1.0 else "pointing game: miss") in ex.readout.value


# ----------------------------------------------------------------------------- general properties


def test_renders_are_pure_and_deterministic(model, shapes):
    a = W.render_cam(model, shapes.images, index=2, method="grad_cam", opacity=0.3)
    b = W.render_cam(model, shapes.images, index=2, method="grad_cam", opacity=0.3)
    assert a == b
    assert W.render_alpha(s=3.0, g=0.1) == W.render_alpha(s=3.0, g=0.1)
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_a_failing_render_is_shown_in_the_readout_not_swallowed():
    ex = W.alpha_explorer()
    image0 = ex.image.value
    ex.controls["s"].min = -10.0
    ex.controls["s"].value = -5.0  # render_alpha rejects s < 0
    assert "camlib-error" in ex.readout.value and "must be &gt;= 0" in ex.readout.value
    assert ex.image.value == image0
    ex.controls["s"].value = 5.0
    assert_in_sync(ex)


def test_constructors_reject_bad_input(model, shapes):
    with pytest.raises(TypeError, match="torch.nn.Module"):
        W.cam_explorer("model", shapes.images)
    with pytest.raises(ValueError, match="unknown method"):
        W.cam_explorer(model, shapes.images, methods=("gradcam",))
    with pytest.raises(ValueError, match="'featurez' is not a submodule"):
        W.feature_maps_explorer(model, shapes.images, layer="featurez")
    with pytest.raises(ValueError, match="one mask per image"):
        W.comparison_explorer(model, shapes.images, shapes.masks[:2])
    with pytest.raises(ValueError, match="out of range"):
        W.render_feature_maps(model, shapes.images, index=7)
