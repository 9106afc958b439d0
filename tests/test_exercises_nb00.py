"""The checks of notebook 00 accept the reference answer and reject typical wrong answers."""

from __future__ import annotations

import pytest
import torch

from camlib.exercises import nb00
from camlib.exercises._check import ExerciseError

# ---------------------------------------------------------------- edge_filter (design)


@pytest.mark.parametrize("kernel", [
    [[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]],  # the Prewitt-like answer
    [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],  # Sobel: also right
    [[0.0, 0.0, 0.0], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]],  # a two-row difference: also right
])
def test_edge_filter_accepts_every_right_design(kernel, capsys):
    nb00.check_edge_filter(lambda: torch.tensor(kernel))
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize("kernel, message", [
    ([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]], "opposite edge"),  # upside down
    ([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]], "gives nothing"),  # a vertical-edge filter
    ([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], "flat image"),  # does not sum to zero
    ([[-1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]], "vertical edge"),  # columns do not cancel
    ([[-1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], "vertical edge"),  # a diagonal
])
def test_edge_filter_names_what_is_wrong_and_hints(kernel, message):
    with pytest.raises(ExerciseError, match=message) as info:
        nb00.check_edge_filter(torch.tensor(kernel))
    assert "Hint" in str(info.value) or message == "opposite edge"


def test_edge_filter_rejects_a_wrong_shape_and_passes_not_implemented_through():
    with pytest.raises(ExerciseError, match="shape"):
        nb00.check_edge_filter(torch.zeros(5, 5))

    def unanswered():
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb00.check_edge_filter(unanswered)


# ---------------------------------------------------------------- receptive_field_size (predict)


def rf_reference(layers):
    size, jump = 1, 1
    for _kind, kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    return size


def rf_reversed_loop(layers):
    # a second correct answer: walk from the output back to the input
    size = 1
    for _kind, kernel, stride in reversed(layers):
        size = (size - 1) * stride + kernel
    return size


def test_receptive_field_accepts_correct_answers(capsys):
    nb00.check_receptive_field(rf_reference)
    nb00.check_receptive_field(rf_reversed_loop)
    assert rf_reference(nb00.COURSE_LAYERS) == 46


@pytest.mark.parametrize("wrong, message", [
    (lambda layers: 1 + sum(k - 1 for _, k, _ in layers), "spacing"),
    (lambda layers: rf_reference([layer for layer in layers if layer[0] == "conv"]), "pooling window"),
    (lambda layers: int(torch.tensor([k for _, k, _ in layers]).prod()), "multiplied"),
])
def test_receptive_field_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb00.check_receptive_field(wrong)


def test_receptive_field_matches_the_network_measured_by_autograd():
    import camlib
    from camlib.figures.nb00 import receptive_field

    model = camlib.models.load_model("gap")
    top, left, bottom, right = receptive_field(model.features, 3, 3)
    assert bottom - top + 1 == right - left + 1 == rf_reference(nb00.COURSE_LAYERS)
    layers = [("conv", m.kernel_size[0], m.stride[0]) if isinstance(m, torch.nn.Conv2d) else
              ("pool", m.kernel_size, m.stride) for m in model.features
              if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d))]
    assert tuple(layers) == nb00.COURSE_LAYERS
