"""The one API of issue 12: one call shape for every method, one implementation of each shared step.

Every CAM-family method is ``method(model, x, layer, *, target=None, score="logit", **options)``
(``cam``'s layer is optional, in the same position); every pixel attribution is
``method(model, x, *, target=None, score="logit", **options)``; SmoothGrad takes the explainer it
smooths as its third positional argument. The options are keyword-only, so a target can never be
passed where a layer is expected.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import camlib
from camlib import results

P = inspect.Parameter
CAM_FAMILY = ["cam", "grad_cam", "grad_cam_plus", "grad_cam_pp", "xgrad_cam", "counterfactual", "hires_cam",
              "layer_cam", "ablation_cam", "score_cam", "eigen_cam"]
LAYERED_ATTRIBUTIONS = ["guided_grad_cam"]
PIXEL = ["saliency", "gradient_x_input", "integrated_gradients", "occlusion", "guided_backprop", "deconvnet"]
CAMLIB = Path(camlib.__file__).parent


def _shape(name: str) -> tuple[list[str], dict[str, object]]:
    params = inspect.signature(getattr(camlib, name)).parameters.values()
    positional = [p.name for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    keyword = {p.name: p.default for p in params if p.kind == P.KEYWORD_ONLY}
    return positional, keyword


def test_every_public_method_is_listed_here():
    """A method added to camlib must join one of the lists above, and so be held to the shape."""
    listed = set(CAM_FAMILY + LAYERED_ATTRIBUTIONS + PIXEL + ["smooth_grad"])
    helpers = {"channel_weighted_sum", "upsample", "normalize"}
    public = {n for n in camlib.__all__ if inspect.isfunction(getattr(camlib, n))}
    assert public - helpers == listed


@pytest.mark.parametrize("name", CAM_FAMILY + LAYERED_ATTRIBUTIONS)
def test_cam_family_call_shape(name):
    positional, keyword = _shape(name)
    assert positional == ["model", "x", "layer"]
    assert keyword.get("target", "missing") is None and keyword.get("score") == "logit"
    layer_default = inspect.signature(getattr(camlib, name)).parameters["layer"].default
    assert (layer_default is None) if name == "cam" else (layer_default is P.empty)


@pytest.mark.parametrize("name", PIXEL)
def test_pixel_attribution_call_shape(name):
    positional, keyword = _shape(name)
    assert positional == ["model", "x"]
    assert keyword.get("target", "missing") is None and keyword.get("score") == "logit"


def test_smooth_grad_call_shape():
    positional, keyword = _shape("smooth_grad")
    assert positional == ["model", "x", "explainer"]
    assert keyword.get("target", "missing") is None and keyword.get("score") == "logit"


def test_integrated_gradients_names_its_quadrature_rule():
    _, keyword = _shape("integrated_gradients")
    assert keyword["rule"] == "trapezoid" and "method" not in keyword


def test_results_carry_the_same_fields():
    for cls in (results.CamResult, results.Attribution):
        fields = set(cls.__dataclass_fields__)
        assert {"method", "target", "score", "score_kind", "extras"} <= fields
    assert "layer" in results.CamResult.__dataclass_fields__


def _sources() -> dict[str, str]:
    return {str(p.relative_to(CAMLIB)): p.read_text() for p in CAMLIB.rglob("*.py")}


def test_one_upsample():
    """Maps are resized by camlib.upsample only; data.py and faces.py shrink *photographs* with
    antialiasing (input preparation, not a map operation)."""
    users = {f for f, text in _sources().items() if "interpolate(" in text}
    assert users <= {"postprocess.py", "data.py", "faces.py"}, users


def test_one_blur():
    users = {f for f, text in _sources().items() if re.search(r"conv2d\(.*groups\s*=", text)}
    assert users == {"metrics.py"}, users


def test_one_min_max_scaling():
    """``(m - min) / (max - min)`` is written once, in camlib.normalize."""
    pattern = re.compile(r"\(\s*[\w.\[\]]+\s*-\s*[\w.\[\]]+\.(min|amin)\(.*\)\s*/|\((?!hi\b)\w+\s*-\s*lo\s*\)\s*/|_safe_ratio\(m - lo")
    users = {f for f, text in _sources().items() if pattern.search(text)}
    assert users == {"postprocess.py"}, users
