"""The checks of notebook 03's exercises accept the solution and reject typical mistakes."""

from __future__ import annotations

import pytest
import torch

from camlib.exercises import nb03
from camlib.exercises._check import ExerciseError


# ----------------------------------------------------------------------------- exercise 1


def _cam(features, fc_weight, target):
    return (fc_weight[target][:, :, None, None] * features).sum(dim=1)


def test_cam_accepts_solution(capsys):
    assert nb03.check_class_activation_map(_cam) is None
    assert "Correct" in capsys.readouterr().out


def _minmax(m):
    flat = m.flatten(1)
    low, high = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    return (m - low) / (high - low)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda a, w, t: _cam(a, w, t).clamp(min=0), "applied a ReLU"),
        (lambda a, w, t: _cam(a, w, t) / a.shape[1], "averaged over the channels"),
        (lambda a, w, t: _cam(a, w, 0 * t), "own target class"),
        (lambda a, w, t: fc_weight_broadcast(a, w, t), "sum over the channel axis"),
        (lambda a, w, t: _minmax(_cam(a, w, t)), "do not normalise"),
    ],
)
def test_cam_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb03.check_class_activation_map(wrong)


def fc_weight_broadcast(features, fc_weight, target):
    # forgetting the sum: the per-channel weighted maps (N, K, h, w)
    return fc_weight[target][:, :, None, None] * features


def test_cam_with_the_transposed_weight_fails_with_a_clear_message():
    # fc_weight[:, target] selects a column; with C != K the shapes do not broadcast
    with pytest.raises(ExerciseError, match="test case"):
        nb03.check_class_activation_map(lambda a, w, t: (w[:, t].T[:, :, None, None] * a).sum(1))


# ----------------------------------------------------------------------------- exercise 2


def _iou(cam_map, mask, fraction):
    region = cam_map > fraction * cam_map.max()
    return (region & mask).sum().double() / (region | mask).sum().double()


def test_iou_accepts_solution(capsys):
    assert nb03.check_iou_at_fraction(_iou) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda m, k, f: ((m > f) & k).sum() / ((m > f) | k).sum(), "threshold is relative"),
        (lambda m, k, f: ((m > f * m.max()) & k).sum() / k.sum(), "recall"),
        (lambda m, k, f: ((m > f * m.max()) & k).sum() / (m > f * m.max()).sum(), "precision"),
        (lambda m, k, f: _inverted(m, k, f), "above the threshold"),
        (lambda m, k, f: ((m > f * m.max()) & k).sum() // ((m > f * m.max()) | k).sum(), "integer division"),
    ],
)
def test_iou_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb03.check_iou_at_fraction(wrong)


def _inverted(cam_map, mask, fraction):
    region = cam_map <= fraction * cam_map.max()
    return (region & mask).sum() / (region | mask).sum()


def test_the_exercise_references_agree_with_camlib():
    """Exercise 1's CAM is camlib.cam's raw map; exercise 2's IoU is camlib.metrics.iou on that map."""
    import camlib

    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.ReLU())
            self.fc = torch.nn.Linear(5, 3)

        def forward(self, x):
            return self.fc(self.features(x).mean(dim=(2, 3)))

    model = Tiny().double().eval()
    x = torch.rand(4, 3, 6, 6, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, 2])
    res = camlib.cam(model, x, target=target)
    features = model.features(x).detach()
    assert torch.allclose(nb03._reference_cam(features, model.fc.weight.detach(), target), res.raw, atol=1e-12)
    masks = torch.zeros(4, 6, 6, dtype=torch.bool)
    masks[:, 1:4, 2:5] = True
    ious = camlib.metrics.iou(res, masks, threshold=0.2).values
    for n in range(4):
        if res.map[n].max() > 0:
            assert torch.allclose(nb03._reference_iou(res.map[n], masks[n], 0.2), ious[n].double(), atol=1e-12)
