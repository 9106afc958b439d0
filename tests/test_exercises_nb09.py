"""The checks of notebook 09 accept correct answers and reject typical mistakes with a hint; the
optional ImageNet analysis of the notebook runs on a network with random weights (no download)."""

import pytest
import torch

from camlib.exercises import nb09
from camlib.exercises._check import ExerciseError


def _reject(check, wrong, message):
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    text = str(info.value)
    assert "Hint" in text, text
    assert message in text, text


# ----------------------------------------------------------------------------- predict: the Grad-CAM++ interval


def interval_solution(s, g):
    w_plus = g.clamp(min=0).sum(dim=1)
    a, b = w_plus / (2 + s * g.max(dim=1).values), w_plus / 2
    return torch.minimum(a, b), torch.maximum(a, b)


def test_interval_accepts_a_solution(capsys):
    assert nb09.check_pp_weight_interval(interval_solution) is None
    assert "Correct" in capsys.readouterr().out


def test_the_reference_interval_holds_the_weights_and_is_tight():
    # the bounds hold Grad-CAM++'s weight for both signs of s and are reached in the limits
    for s, g in nb09._interval_cases():
        low, high = nb09.pp_weight_interval_reference(s, g)
        w = nb09._pp_weights(s, g)
        assert torch.all(low <= w + 1e-12) and torch.all(w <= high + 1e-12)
    s = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    g = torch.full((2, 5), 0.3, dtype=torch.float64)  # one gradient value: the weight is the far bound
    low, high = nb09.pp_weight_interval_reference(s, g)
    w = nb09._pp_weights(s, g)
    assert torch.allclose(w, torch.stack([high[0], low[1]]))


def _unswapped(s, g):
    w_plus = g.clamp(min=0).sum(dim=1)
    return w_plus / (2 + s * g.max(dim=1).values), w_plus / 2


def _with_signed_gradients(s, g):
    w = g.sum(dim=1)  # mistake: negative gradients counted
    a, b = w / (2 + s * g.max(dim=1).values), w / 2
    return torch.minimum(a, b), torch.maximum(a, b)


def _with_smallest_gradient(s, g):
    w_plus = g.clamp(min=0).sum(dim=1)
    a, b = w_plus / (2 + s * g.min(dim=1).values), w_plus / 2  # mistake: the smallest gradient
    return torch.minimum(a, b), torch.maximum(a, b)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_unswapped, "which of your two bounds is the larger"),
        (lambda s, g: tuple(v / g.shape[1] for v in interval_solution(s, g)), "sum over positions"),
        (lambda s, g: interval_solution(s, g)[0][None], "two tensors"),
        (_with_signed_gradients, "positive gradient"),
        (_with_smallest_gradient, "monotone"),
    ],
    ids=["not-swapped-for-negative-s", "means", "wrong-shape", "signed-gradients", "min-gradient"],
)
def test_interval_rejects_typical_mistakes(wrong, message):
    _reject(nb09.check_pp_weight_interval, wrong, message)


# ----------------------------------------------------------------------------- design: known answers


def _bump(p, size, sigma=1.5):
    rows = torch.arange(size, dtype=torch.float32)[:, None]
    cols = torch.arange(size, dtype=torch.float32)[None, :]
    return torch.exp(-((cols[None] - p[:, 0, None, None]) ** 2 + (rows[None] - p[:, 1, None, None]) ** 2) / (2 * sigma**2))


def maps_solution(points, other, size, tolerance):
    return {"hit": _bump(points, size), "miss": _bump(other, size), "chance": torch.zeros(points.shape[0], size, size)}


def test_known_answer_maps_accept_a_solution(capsys):
    assert nb09.check_known_answer_maps(maps_solution) is None
    assert "Correct" in capsys.readouterr().out


def test_known_answer_maps_accept_another_design(capsys):
    # a different design: a disk for the hit, a single pixel at the other point, a constant map
    def design(points, other, size, tolerance):
        n = points.shape[0]
        rows = torch.arange(size)[:, None]
        cols = torch.arange(size)[None, :]
        hit = ((cols[None] - points[:, 0, None, None].round()) ** 2 + (rows[None] - points[:, 1, None, None].round()) ** 2
               <= 1).float()
        miss = torch.zeros(n, size, size)
        miss[torch.arange(n), other[:, 1].round().long(), other[:, 0].round().long()] = 7.0
        return {"hit": hit, "miss": miss, "chance": torch.full((n, size, size), 0.3)}

    nb09.check_known_answer_maps(design)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda p, o, s, t: dict(maps_solution(p, o, s, t), hit=_bump(p, s).transpose(1, 2)), "swapped"),
        (lambda p, o, s, t: dict(maps_solution(p, o, s, t), miss=torch.rand(p.shape[0], s, s)), "wrong place"),
        (lambda p, o, s, t: dict(maps_solution(p, o, s, t), chance=torch.rand(p.shape[0], s, s)), "share"),
    ],
    ids=["hit-transposed", "miss-random", "chance-random"],
)
def test_known_answer_maps_reject_typical_mistakes(wrong, message):
    _reject(nb09.check_known_answer_maps, wrong, message)


# ----------------------------------------------------------------------------- counterexample: XGrad-CAM


def counterexample_solution():
    a = torch.tensor([[[[3.0, -2.9]]]])  # sums to 0.1
    g = torch.tensor([[[[1.0, 0.0]]]])  # weight 3.0 / 0.1 = 30, gradients in [0, 1]
    return a, g


def test_counterexample_accepts_a_solution(capsys):
    assert nb09.check_xgrad_counterexample(counterexample_solution) is None
    assert "Correct" in capsys.readouterr().out


def test_counterexample_agrees_with_camlib_xgrad_weights():
    # the check's weight is camlib's XGrad-CAM weight: a layer that outputs A, a score sum(g * A)
    a, g = counterexample_solution()

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Identity()

        def forward(self, x):
            return (self.layer(x) * g).flatten(1).sum(1, keepdim=True)

    import warnings

    import camlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = camlib.xgrad_cam(Head(), a, "layer", target=0)
    assert torch.allclose(res.weights, torch.tensor([[30.0]]), rtol=1e-5)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda: (torch.rand(1, 2, 3, 3), torch.randn(1, 2, 3, 3)), "average of g"),
        (lambda: (torch.tensor([[[[1.0, -1.0]]]]), torch.tensor([[[[1.0, 0.0]]]])), "sum to 0"),
        (lambda: (torch.tensor([[[[1.0, -0.5]]]]), torch.tensor([[[[1.0, 1.0]]]])), "both signs"),
        (lambda: (torch.ones(1, 1, 2), torch.ones(1, 1, 2)), "shape (1, K, h, w)"),
    ],
    ids=["non-negative", "zero-sum", "signed-but-inside", "wrong-shape"],
)
def test_counterexample_rejects_non_examples(wrong, message):
    with pytest.raises(ExerciseError) as info:
        nb09.check_xgrad_counterexample(wrong)
    assert message in str(info.value), str(info.value)


# ----------------------------------------------------------------------------- the optional ImageNet cell


def test_imagenet_analysis_runs_on_random_weights():
    import camlib
    from camlib.figures import nb09 as figures09

    torch.manual_seed(0)
    model = camlib.models.imagenet_model("resnet18", pretrained=False)
    x = camlib.data.photo("chelsea", size=64)
    fig, text = figures09.imagenet_analysis(model, x)
    assert "predicted class" in text and "layer4" in text
    assert "sandwich holds in 100.0 %" in text  # a ReLU network: every channel satisfies the bound
    assert len(fig.axes) > 8


# ----------------------------------------------------------------------------- the notebook's explorer


@pytest.fixture(scope="module")
def onet_and_images():
    import camlib
    from camlib.figures import nb09 as figures09

    return camlib.models.load_model("onet"), figures09.showcase()


def test_real_network_render_face_and_landmark(onet_and_images):
    from camlib import widgets
    from camlib.figures import nb09 as figures09

    model, show = onet_and_images
    png, text = widgets.render_real_network(model, show.images, show.names, show.points, index=0)
    assert png.startswith(b"\x89PNG") and "face logit" in text and "channels sum below zero" in text
    # the landmark readout reports the verdict that camlib's pointing game gives for the same map
    png, text = widgets.render_real_network(model, show.images, show.names, show.points, index=2,
                                            output="left_eye", method="saliency")
    heat = figures09.landmark_map("saliency", model, show.images[2:3], "left_eye")
    hit = float(figures09.pointing(heat, show.points[2:3, 0]).values[0])
    assert ("hit at the" in text) == (hit == 1.0) and "reference (" in text
    # a non-face has no reference point: the readout says O-Net's own point stands in
    _, text = widgets.render_real_network(model, show.images, show.names, show.points, index=5, output="nose")
    assert "no reference for this image" in text


def test_real_network_explorer_controls(onet_and_images):
    from camlib import widgets

    model, show = onet_and_images
    explorer = widgets.real_network_explorer(model, show.images, show.names, show.points,
                                             methods=["grad_cam", "saliency"])
    assert explorer.kind == "real-network" and explorer.render_count == 1
    assert explorer.static == {"index": list(range(6)), "output": ["face", "left_eye"]}
    before = explorer.image.value
    explorer.controls["index"].value = 3
    assert explorer.render_count == 2 and explorer.image.value != before
    explorer.controls["method"].value = "saliency"
    assert explorer.controls["layer"].disabled
    explorer.controls["method"].value = "grad_cam"
    assert not explorer.controls["layer"].disabled
    with pytest.raises(ValueError, match="out of range"):
        widgets.render_real_network(model, show.images, show.names, show.points, index=6)
    with pytest.raises(ValueError, match="output must be one of"):
        widgets.render_real_network(model, show.images, show.names, show.points, output="ear")
