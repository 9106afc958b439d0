"""Issue 12's silent wrong answers, one test each: an explanation is right or it is an error.

1. inference mode, 2. torch.compile, 3. a layer the score does not depend on, 4. the model guard
around every forward pass (metrics, axioms, widgets, figures), 5. one target resolution path,
6. non-finite maps, baselines and inputs, 7. occlusion windows that would skip pixels.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import camlib
from camlib import axioms, metrics
from tiny_nets import DTYPE, gap_net, images

GRADIENT_METHODS = {
    "grad_cam": lambda m, x, **kw: camlib.grad_cam(m, x, "features", **kw),
    "grad_cam_plus": lambda m, x, **kw: camlib.grad_cam_plus(m, x, "features", **kw),
    "grad_cam_pp": lambda m, x, **kw: camlib.grad_cam_pp(m, x, "features", **kw),
    "xgrad_cam": lambda m, x, **kw: camlib.xgrad_cam(m, x, "features", **kw),
    "counterfactual": lambda m, x, **kw: camlib.counterfactual(m, x, "features", **kw),
    "saliency": lambda m, x, **kw: camlib.saliency(m, x, **kw),
    "gradient_x_input": lambda m, x, **kw: camlib.gradient_x_input(m, x, **kw),
    "integrated_gradients": lambda m, x, **kw: camlib.integrated_gradients(m, x, steps=4, **kw),
}


def _values(result):
    return result.raw if isinstance(result, camlib.CamResult) else result.values


def _tensors(result):
    return [v for v in vars(result).values() if isinstance(v, torch.Tensor)]


# --------------------------------------------------------------------------- 1. inference mode


@pytest.mark.parametrize("name", list(GRADIENT_METHODS))
def test_1_inference_mode_gives_the_normal_explanation(name, gap_model, two_images):
    model, x = gap_model, two_images
    expected = GRADIENT_METHODS[name](model, x, target=[1, 2])
    with torch.inference_mode():
        x_inf = x.clone()  # an inference tensor, as a learner's preprocessing would produce
        got = GRADIENT_METHODS[name](model, x_inf, target=[1, 2])
    assert float(_values(expected).abs().max()) > 0
    assert torch.allclose(_values(got), _values(expected), rtol=0, atol=1e-12)
    assert not any(t.is_inference() for t in _tensors(got))
    _values(got).add_(0)  # usable later, outside inference mode


def test_1_model_with_inference_parameters_is_refused():
    with torch.inference_mode():
        model = gap_net(seed=1)  # parameters created in inference mode: no gradient can flow
    with pytest.raises(ValueError, match="inference tensors"):
        camlib.grad_cam(model, images(n=1, size=8), "features")


# --------------------------------------------------------------------------- 2. torch.compile


@pytest.mark.parametrize("wrap", ["compiled", "compiled inside a Sequential", "compiled inside a compiled Sequential"])
def test_2_compiled_model_is_explained_through_the_original_module(wrap, gap_model, two_images):
    model, x = gap_model, two_images
    expected = camlib.grad_cam(model, x, "features", target=[0, 3])
    if wrap == "compiled":
        wrapped, layer = torch.compile(model), "features"
    elif wrap == "compiled inside a Sequential":
        wrapped, layer = nn.Sequential(torch.compile(model)), "0.features"
    else:
        wrapped, layer = torch.compile(nn.Sequential(torch.compile(model))), "_orig_mod.0._orig_mod.features"
    got = camlib.grad_cam(wrapped, x, layer, target=[0, 3])
    assert float(expected.raw.abs().max()) > 0
    assert torch.allclose(got.raw, expected.raw, rtol=0, atol=1e-12)
    assert got.layer.endswith("features") and "_orig_mod" not in got.layer
    if wrap == "compiled inside a Sequential":
        assert isinstance(getattr(wrapped[0], "_orig_mod", None), nn.Module)  # the wrapper is back


# --------------------------------------------------------------------------- 3. layer off the score's path


class DetachedFeatures(nn.Module):
    """The score is computed from a detached copy of ``features``; ``side`` runs but is unused."""

    def __init__(self) -> None:
        super().__init__()
        base = gap_net(seed=2)
        self.features, self.pool, self.fc = base.features, base.pool, base.fc
        self.side = nn.Conv2d(3, 2, 1).to(DTYPE)

    def forward(self, x):
        self.side(x)
        return self.fc(self.pool(self.features(x).detach()))


@pytest.mark.parametrize("name", ["grad_cam", "grad_cam_plus", "grad_cam_pp", "xgrad_cam", "counterfactual"])
@pytest.mark.parametrize("layer", ["features", "side"])
def test_3_layer_that_does_not_reach_the_score_raises(name, layer):
    fn = getattr(camlib, name)
    with pytest.raises(ValueError, match="does not depend on layer"):
        fn(DetachedFeatures(), images(n=1, size=8), layer)


@pytest.mark.parametrize("name", ["saliency", "gradient_x_input", "integrated_gradients"])
def test_3_pixel_method_whose_score_ignores_x_raises(name):
    with pytest.raises(ValueError, match="does not depend on the input"):
        GRADIENT_METHODS[name](DetachedFeatures(), images(n=1, size=8))


# --------------------------------------------------------------------------- 4. one guard everywhere


class BNDropNet(nn.Module):
    """conv -> BatchNorm -> ReLU (= features) -> mean GAP -> dropout -> fc, float64."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
            self.drop = nn.Dropout(0.5)
            self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.features[1].running_mean.uniform_(-0.5, 0.5)
            self.features[1].running_var.uniform_(0.5, 2.0)
        self.double()

    def forward(self, x):
        return self.fc(self.drop(self.features(x).mean(dim=(2, 3))))


def _cam(m, x):
    return camlib.grad_cam(m, x, "features", target=[0, 1, 2])


def _ig(m, x):
    return camlib.integrated_gradients(m, x, target=[0, 1, 2], steps=4)


MAPS = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
ENTRY_POINTS = {
    "deletion": lambda m, x: metrics.deletion(m, x, MAPS, steps=4).values,
    "insertion": lambda m, x: metrics.insertion(m, x, MAPS, steps=4).values,
    "average_drop": lambda m, x: metrics.average_drop(m, x, MAPS).values,
    "increase_in_confidence": lambda m, x: metrics.increase_in_confidence(m, x, MAPS).values,
    "randomization_test": lambda m, x: metrics.randomization_test(camlib.grad_cam, m, x, layer="features", layers=["fc"]).spearman,
    "completeness": lambda m, x: axioms.completeness(m, x, _ig(m, x)).values,
    "sensitivity_violation": lambda m, x: axioms.sensitivity_violation(m, x, "features", _cam(m, x)).values,
    "conservation_violation": lambda m, x: axioms.conservation_violation(m, x, _cam(m, x)).values,
    "implementation_invariance": lambda m, x: axioms.implementation_invariance(camlib.saliency, m, m, x).extras["output_gap"],
}


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_4_metrics_and_axioms_run_a_train_mode_model_in_eval_mode_and_change_nothing(name):
    model, x = BNDropNet(), images(n=3, size=8)
    model.eval()
    expected = ENTRY_POINTS[name](model, x)
    model.train()
    model.fc.weight.requires_grad_(False)
    sentinel = torch.zeros_like(model.features[0].weight)
    model.features[0].weight.grad = sentinel
    state = {k: v.clone() for k, v in model.state_dict().items()}
    got = ENTRY_POINTS[name](model, x)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)  # dropout off, running statistics used
    assert all(m.training for m in model.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # buffers unchanged
    assert model.features[0].weight.grad is sentinel and not model.fc.weight.requires_grad


class BufferWriter(nn.Module):
    """A model whose forward writes into a buffer even in eval mode (a running counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = gap_net(seed=4)
        self.register_buffer("calls", torch.zeros((), dtype=DTYPE))
        self.register_buffer("last", torch.zeros(4, dtype=DTYPE))

    def forward(self, x):
        out = self.net(x)
        self.calls.add_(1)
        self.last = out.detach()[0].clone()  # rebinding the buffer attribute
        return out


@pytest.mark.parametrize("name", ["grad_cam", "saliency", "deletion", "completeness"])
def test_4_buffers_changed_by_a_forward_are_restored(name):
    model, x = BufferWriter(), images(n=3, size=8)
    calls, last = model.calls, model.last
    if name == "deletion":
        metrics.deletion(model, x, torch.rand(3, 8, 8, dtype=DTYPE), steps=2)
    elif name == "completeness":
        axioms.completeness(model, x, camlib.integrated_gradients(model, x, steps=2))
    elif name == "grad_cam":
        camlib.grad_cam(model, x, "net.features")
    else:
        camlib.saliency(model, x)
    assert model.calls is calls and float(calls) == 0.0
    assert model.last is last and bool((last == 0).all())


def test_4_widget_renders_run_under_the_guard():
    from camlib import widgets

    model, x = BNDropNet().float(), images(n=2, size=8).float()
    model.eval()
    expected = widgets.render_cam(model, x, index=1, layer="features")
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert widgets.render_cam(model, x, index=1, layer="features") == expected
    assert widgets.render_feature_maps(model, x, index=1, channel=2, layer="features")[1]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())


# --------------------------------------------------------------------------- 5. one target resolution


@pytest.mark.parametrize("target, error, match", [
    (1.7, TypeError, "Do not round"),
    ([0, 1.7, 2], TypeError, "Do not round"),
    (torch.tensor([0.0, 1.0, 2.0]), TypeError, "Do not round"),
    (3, ValueError, r"out of range.*0\.\.2"),
    ([0, 1, 5], ValueError, r"out of range.*0\.\.2"),
    (2**70, ValueError, "out of range"),
    ([0, 1], ValueError, "2 entries but the batch has N = 3"),
    (True, TypeError, "bool"),
    ("cat", TypeError, "output_names"),
], ids=["float", "float-in-list", "float-tensor", "int-too-big", "list-too-big", "2**70", "short", "bool", "name"])
def test_5_every_entry_point_resolves_targets_the_same_way(target, error, match):
    model, x = BNDropNet(), images(n=3, size=8)
    calls = {
        "grad_cam": lambda: camlib.grad_cam(model, x, "features", target=target),
        "saliency": lambda: camlib.saliency(model, x, target=target),
        "deletion": lambda: metrics.deletion(model, x, MAPS, target=target, steps=2),
        "average_drop": lambda: metrics.average_drop(model, x, MAPS, target=target),
        "implementation_invariance": lambda: axioms.implementation_invariance(camlib.saliency, model, model, x, target=target),
        "randomization_test": lambda: metrics.randomization_test(camlib.saliency, model, x, target=target, layers=[]),
    }
    messages = set()
    for entry, call in calls.items():
        with pytest.raises(error, match=match) as info:
            call()
        messages.add(str(info.value))
    assert len(messages) == 1, messages  # the same words from every entry point


def test_5_output_names_select_the_class():
    model = camlib.models.build_model("gap").double().eval()
    x = images(n=2, size=16)
    by_name = camlib.grad_cam(model, x, "features", target=["square", "cross"])
    by_index = camlib.grad_cam(model, x, "features", target=[1, 3])
    assert torch.equal(by_name.target, torch.tensor([1, 3])) and torch.equal(by_name.raw, by_index.raw)
    assert torch.equal(metrics.deletion(model, x, by_name, target="square", steps=2).extras["target"], torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"Did you mean one of \['square'\]"):
        camlib.saliency(model, x, target="sqare")


class Regression(nn.Module):
    output_kind = "regression"

    def __init__(self) -> None:
        super().__init__()
        self.net = gap_net(seed=5)

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("call", [
    lambda m, x: camlib.grad_cam(m, x, "net.features", score="softmax"),
    lambda m, x: camlib.saliency(m, x, score="log_softmax"),
    lambda m, x: metrics.deletion(m, x, torch.rand(1, 8, 8), steps=2),  # deletion's default is softmax
], ids=["grad_cam", "saliency", "deletion"])
def test_5_regression_outputs_allow_only_the_logit(call):
    model, x = Regression(), images(n=1, size=8)
    with pytest.raises(ValueError, match="regression"):
        call(model, x)
    assert camlib.grad_cam(model, x, "net.features", target=2).score_kind == "logit"


# --------------------------------------------------------------------------- 6. non-finite values


def _nan_map():
    m = torch.rand(2, 8, 8)
    m[1, 3, 3] = float("nan")
    return m


@pytest.mark.parametrize("call", [
    lambda m: metrics.pointing_game(m, torch.ones(2, 8, 8, dtype=torch.bool)),
    lambda m: metrics.energy_inside(m, torch.ones(2, 8, 8, dtype=torch.bool)),
    lambda m: metrics.iou(m, torch.ones(2, 8, 8, dtype=torch.bool)),
    lambda m: metrics.deletion(gap_net(seed=1), images(n=2, size=8), m.double(), steps=2),
    lambda m: metrics.spearman(m, torch.rand(2, 8, 8)),
    lambda m: camlib.normalize(m),
    lambda m: camlib.normalize(m, "max"),
], ids=["pointing_game", "energy_inside", "iou", "deletion", "spearman", "normalize", "normalize-max"])
def test_6_nan_maps_are_refused(call):
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(_nan_map())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("call", [
    lambda m, x, b: camlib.integrated_gradients(m, x, baseline=b, steps=2),
    lambda m, x, b: camlib.occlusion(m, x, baseline=b, patch=4, stride=4),
    lambda m, x, b: camlib.integrated_gradients(m, x, baseline=torch.full_like(x, b), steps=2),
    lambda m, x, b: metrics.deletion(m, x, torch.rand(2, 8, 8), substrate=b, steps=2),
    lambda m, x, b: metrics.average_drop(m, x, torch.rand(2, 8, 8), baseline=b),
    lambda m, x, b: axioms.completeness(m, x, camlib.saliency(m, x), baseline=b),
], ids=["ig-float", "occlusion-float", "ig-tensor", "deletion-substrate", "average_drop", "completeness"])
def test_6_non_finite_baselines_are_refused(call, bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(gap_net(seed=1), images(n=2, size=8), bad)


def test_6_finiteness_is_checked_after_the_cast_to_the_model_dtype():
    model = gap_net(seed=1).half()
    x = images(n=1, size=8).float() * 1e5  # finite in float32, overflows float16 (max 65504)
    for call in (lambda: camlib.grad_cam(model, x, "features"), lambda: camlib.saliency(model, x),
                 lambda: camlib.occlusion(model, x, patch=4, stride=4)):
        with pytest.raises(ValueError, match="after conversion to the model's dtype torch.float16"):
            call()


# --------------------------------------------------------------------------- 7. occlusion coverage


@pytest.mark.parametrize("patch, stride", [(2, 3), ((4, 2), (4, 3)), (4, (5, 1))])
def test_7_occlusion_refuses_a_stride_that_skips_pixels(patch, stride):
    with pytest.raises(ValueError, match="every pixel must be covered"):
        camlib.occlusion(gap_net(seed=1), images(n=1, size=8), patch=patch, stride=stride)


def test_7_every_pixel_is_covered_and_windows_start_inside():
    occ = camlib.occlusion(gap_net(seed=1), images(n=1, size=9), patch=4, stride=4)
    assert occ.extras["rows"] == [0, 4, 8] and max(occ.extras["cols"]) < 9
    assert bool((occ.values != 0).all())


# --------------------------------------------------------------------------- the methods added later

NEW_METHODS = {
    "hires_cam": lambda m, x, layer="features", **kw: camlib.hires_cam(m, x, layer, **kw),
    "layer_cam": lambda m, x, layer="features", **kw: camlib.layer_cam(m, x, layer, **kw),
    "ablation_cam": lambda m, x, layer="features", **kw: camlib.ablation_cam(m, x, layer, **kw),
    "score_cam": lambda m, x, layer="features", **kw: camlib.score_cam(m, x, layer, **kw),
    "eigen_cam": lambda m, x, layer="features", **kw: camlib.eigen_cam(m, x, layer, **kw),
    "guided_backprop": lambda m, x, layer=None, **kw: camlib.guided_backprop(m, x, **kw),
    "deconvnet": lambda m, x, layer=None, **kw: camlib.deconvnet(m, x, **kw),
    "guided_grad_cam": lambda m, x, layer="features", **kw: camlib.guided_grad_cam(m, x, layer, **kw),
    "smooth_grad": lambda m, x, layer=None, **kw: camlib.smooth_grad(m, x, camlib.saliency, samples=2, **kw),
}


@pytest.mark.parametrize("name", list(NEW_METHODS))
def test_1_new_methods_explain_correctly_inside_inference_mode(name, gap_model, two_images):
    expected = NEW_METHODS[name](gap_model, two_images, target=[1, 2])
    with torch.inference_mode():
        got = NEW_METHODS[name](gap_model, two_images.clone(), target=[1, 2])
    assert float(_values(expected).abs().max()) > 0
    assert torch.allclose(_values(got), _values(expected), rtol=0, atol=1e-12)
    assert not any(t.is_inference() for t in _tensors(got))


@pytest.mark.parametrize("name", list(NEW_METHODS))
def test_2_new_methods_explain_a_compiled_model_through_its_original_module(name, gap_model, two_images):
    expected = NEW_METHODS[name](gap_model, two_images, target=[0, 3])
    got = NEW_METHODS[name](torch.compile(gap_model), two_images, target=[0, 3])
    assert float(_values(expected).abs().max()) > 0
    assert torch.allclose(_values(got), _values(expected), rtol=0, atol=1e-12)


class DetachedInput(nn.Module):
    """The score is computed from a detached copy of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.net = gap_net(seed=2)

    def forward(self, x):
        return self.net(x.detach())


@pytest.mark.parametrize("name, model, layer", [
    ("hires_cam", DetachedFeatures, "features"),
    ("layer_cam", DetachedFeatures, "features"),
    ("hires_cam", DetachedFeatures, "side"),
    ("layer_cam", DetachedFeatures, "side"),
    ("ablation_cam", DetachedFeatures, "side"),
    ("guided_grad_cam", DetachedFeatures, "features"),
    ("guided_backprop", DetachedInput, None),
    ("deconvnet", DetachedInput, None),
    ("guided_grad_cam", DetachedInput, "net.features"),
    ("smooth_grad", DetachedInput, None),
], ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", str(v)))
def test_3_new_methods_refuse_a_layer_or_input_the_score_does_not_depend_on(name, model, layer):
    with pytest.raises(ValueError, match="does not depend on"):
        NEW_METHODS[name](model(), images(n=1, size=8), layer=layer)


def test_3_ablation_cam_of_a_layer_followed_by_detach_is_still_explained():
    """Ablation-CAM intervenes in the forward pass: a .detach() after the layer does not cut it off."""
    got = camlib.ablation_cam(DetachedFeatures(), images(n=2, size=8), "features", target=[0, 1])
    plain = DetachedFeatures()
    plain.forward = lambda x: plain.fc(plain.pool(plain.features(x)))  # the same function, no detach
    assert torch.allclose(got.raw, camlib.ablation_cam(plain, images(n=2, size=8), "features", target=[0, 1]).raw)


@pytest.mark.parametrize("name", list(NEW_METHODS))
def test_4_new_methods_explain_a_train_mode_model_in_eval_mode_and_change_nothing(name):
    model, x = BNDropNet(), images(n=3, size=8)
    expected = NEW_METHODS[name](model, x, target=[0, 1, 2])
    model.train()
    model.fc.weight.requires_grad_(False)
    sentinel = torch.zeros_like(model.features[0].weight)
    model.features[0].weight.grad = sentinel
    state = {k: v.clone() for k, v in model.state_dict().items()}
    got = NEW_METHODS[name](model, x, target=[0, 1, 2])
    assert torch.allclose(_values(got), _values(expected), rtol=0, atol=1e-12)  # dropout off, running stats
    assert all(m.training for m in model.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert model.features[0].weight.grad is sentinel and not model.fc.weight.requires_grad


@pytest.mark.parametrize("name", list(NEW_METHODS))
def test_6_new_methods_refuse_non_finite_input(name, gap_model, two_images):
    x = two_images.clone()
    x[1, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        NEW_METHODS[name](gap_model, x)


def _overflowing_half_model():
    """Finite float16 input, but the logits exceed float16's range (max 65504)."""
    model = gap_net(seed=1).half()
    with torch.no_grad():
        model.fc.weight.mul_(3e4)
    return model


OUTPUT_CALLS = {
    **{name: (lambda fn: lambda m, x: fn(m, x))(fn) for name, fn in {**GRADIENT_METHODS, **NEW_METHODS}.items()},
    "cam": lambda m, x: camlib.cam(m, x),
    "occlusion": lambda m, x: camlib.occlusion(m, x, patch=4, stride=4),
    "deletion": lambda m, x: metrics.deletion(m, x, torch.rand(2, 8, 8), steps=2),
    "average_drop": lambda m, x: metrics.average_drop(m, x, torch.rand(2, 8, 8)),
}


@pytest.mark.parametrize("name", list(OUTPUT_CALLS))
def test_6_a_model_output_that_overflows_is_refused_not_explained_as_nan(name):
    with pytest.raises(ValueError, match="output contains NaN or infinite values although its input is finite"):
        OUTPUT_CALLS[name](_overflowing_half_model(), images(n=2, size=8).float())


@pytest.mark.parametrize("name", ["grad_cam", "saliency", "guided_backprop", "eigen_cam", "deletion"])
def test_6_an_output_that_underflows_to_zero_is_refused_not_explained_as_a_zero_map(name):
    """Logits of about 1e-10 (as a randomly initialised MobileNet gives) are all exactly 0 in float16."""
    model = gap_net(seed=1).half()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            p.zero_() if pname.endswith("bias") else p.mul_(1e-3)
    with pytest.raises(ValueError, match="exactly 0 in torch.float16: its values underflowed"):
        OUTPUT_CALLS[name](model, images(n=2, size=8).float())


@pytest.mark.parametrize("name", ["grad_cam", "hires_cam", "saliency", "gradient_x_input", "integrated_gradients",
                                  "guided_backprop", "deconvnet"])
def test_6_a_gradient_or_map_that_underflows_is_refused(name):
    """float16 output = the fc bias (non-zero), but every product of two weights underflows."""
    model = gap_net(seed=1).half()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e-4)
    x = images(n=2, size=8).float()
    assert bool(camlib._hooks.predict(model, x).any())
    with pytest.raises(ValueError, match="underflowed"):
        OUTPUT_CALLS[name](model, x)


def test_6_eigen_cam_of_a_half_precision_model_decomposes_in_float32(gap_model, two_images):
    expected = camlib.eigen_cam(gap_model, two_images, "features")
    got = camlib.eigen_cam(gap_model.half(), two_images, "features")
    assert got.raw.dtype == torch.float16
    assert torch.allclose(got.raw.double(), expected.raw, rtol=2e-2, atol=2e-2 * float(expected.raw.abs().max()))


def test_randomization_of_a_named_block_randomises_all_its_parameters(gap_model, two_images):
    """``layers=["features"]`` names a Sequential that owns no parameter itself: its children are reset."""
    res = metrics.randomization_test(camlib.grad_cam, gap_model, two_images, target=[0, 1], layers=["features"],
                                     layer="features")
    assert not torch.allclose(res.maps[1], res.maps[0])
    assert bool((res.spearman[1] < 1).all())


WIDGET_CALLS = {
    "render_cam": lambda w, m, x, **kw: w.render_cam(m, x, layer="features", **kw),
    "render_beyond": lambda w, m, x, **kw: w.render_beyond(m, x, method="Grad-CAM", **kw),
    "render_comparison": lambda w, m, x, **kw: w.render_comparison(m, x, torch.ones(2, 8, 8, dtype=torch.bool), **kw),
    "render_occlusion": lambda w, m, x, index=0, **kw: w.render_occlusion(m, x[index], patch=4, stride=4, **kw),
    "render_ig": lambda w, m, x, index=0, **kw: w.render_ig(m, x[index], steps=4, **kw),
}


@pytest.mark.parametrize("name", list(WIDGET_CALLS))
def test_5_widgets_refuse_a_float_target_instead_of_truncating_it(name):
    from camlib import widgets

    model, x = gap_net(seed=1).float(), images(n=2, size=8).float()
    with pytest.raises(TypeError, match="Do not round a float"):
        WIDGET_CALLS[name](widgets, model, x, target=1.7)
    WIDGET_CALLS[name](widgets, model, x, target=-1)  # the explorers' "predicted class" entry


@pytest.mark.parametrize("name", ["render_cam", "render_beyond", "render_comparison"])
def test_5_widgets_refuse_a_float_image_index(name):
    from camlib import widgets

    with pytest.raises(TypeError, match="index must be an int"):
        WIDGET_CALLS[name](widgets, gap_net(seed=1).float(), images(n=2, size=8).float(), index=1.5)
