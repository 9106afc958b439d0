"""The checks of notebook 00 accept the reference answer and reject typical wrong answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from camlib.exercises import nb00
from camlib.exercises._check import ExerciseError

# ---------------------------------------------------------------- conv2d_single


def conv_loops(image, kernel):
    kh, kw = kernel.shape
    H, W = image.shape
    out = torch.zeros(H - kh + 1, W - kw + 1, dtype=image.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (kernel * image[i : i + kh, j : j + kw]).sum()
    return out


def conv_shifted_slices(image, kernel):
    # a second correct answer: one shifted slice of the image per kernel entry
    kh, kw = kernel.shape
    oh, ow = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    return sum(kernel[u, v] * image[u : u + oh, v : v + ow] for u in range(kh) for v in range(kw))


def conv_flipped(image, kernel):
    return conv_loops(image, kernel.flip(0, 1))


def conv_same_padding(image, kernel):
    kh, kw = kernel.shape
    padded = F.pad(image, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
    return conv_loops(padded, kernel)


def conv_transposed(image, kernel):
    kh, kw = kernel.shape
    H, W = image.shape
    out = torch.zeros(H - kh + 1, W - kw + 1, dtype=image.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for u in range(kh):
                for v in range(kw):
                    out[i, j] += kernel[u, v] * image[i + v, j + u]  # indices swapped
    return out


def conv_off_by_one(image, kernel):
    kh, kw = kernel.shape
    return conv_loops(image, kernel)[:-1, :]  # forgets the last row of positions


def test_conv_accepts_reference(capsys):
    assert nb00.check_conv2d_single(conv_loops) is None
    assert nb00.check_conv2d_single(conv_shifted_slices) is None
    assert "Correct: conv2d_single" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (conv_flipped, "flipped the kernel"),
        (conv_same_padding, "you padded"),
        (conv_transposed, "rows and columns are mixed up"),
        (conv_off_by_one, "H - kh \\+ 1"),
    ],
)
def test_conv_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        nb00.check_conv2d_single(wrong)
    assert "def " not in str(info.value)


def test_conv_passes_not_implemented_through():
    def stub(image, kernel):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb00.check_conv2d_single(stub)


# ---------------------------------------------------------------- gap_head


def head_right(A, weight, bias):
    pooled = A.mean(dim=(2, 3))
    return pooled @ weight.T + bias


def head_einsum(A, weight, bias):
    Z = A.shape[2] * A.shape[3]
    return torch.einsum("nkij,ck->nc", A, weight) / Z + bias


def head_sum(A, weight, bias):
    return A.sum(dim=(2, 3)) @ weight.T + bias


def head_no_bias(A, weight, bias):
    return A.mean(dim=(2, 3)) @ weight.T


def head_max(A, weight, bias):
    return A.amax(dim=(2, 3)) @ weight.T + bias


def head_only_pooled(A, weight, bias):
    return A.mean(dim=(2, 3))


def head_crashes(A, weight, bias):
    return A.mean(dim=(2, 3)) @ weight + bias  # weight not transposed


def test_head_accepts_reference(capsys):
    assert nb00.check_gap_head(head_right) is None
    assert nb00.check_gap_head(head_einsum) is None
    assert "Correct: gap_head" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (head_sum, "divides the sum by"),
        (head_no_bias, "missing the bias"),
        (head_max, "global max pooling"),
        (head_only_pooled, "shape \\(N, C\\)"),
        (head_crashes, "raised RuntimeError"),
    ],
)
def test_head_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb00.check_gap_head(wrong)


# ---------------------------------------------------------------- the notebook guards camlib

import dataclasses  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from notebook_sections import notebook_code  # noqa: E402
from notebook_sections import run_cells as _run_cells  # noqa: E402

import camlib  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00_what_a_cnn_learns.ipynb"


def run_cells(cells: list[tuple[str, str]], namespace: dict) -> dict:
    return _run_cells(cells, namespace, NOTEBOOK.name)


@pytest.fixture(scope="module")
def before_camlib_check() -> dict:
    """The notebook's state just before its "Check it against camlib" section (run once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plt.show() under Agg
        return run_cells(notebook_code(NOTEBOOK, None, "## Check it against camlib"), {"__name__": "__notebook__"})


CHECK_CELLS = notebook_code(NOTEBOOK, "## Check it against camlib", "## Explore it")


def test_notebook_camlib_section_passes(before_camlib_check):
    assert CHECK_CELLS, "the notebook has no code in its 'Check it against camlib' section"
    run_cells(CHECK_CELLS, dict(before_camlib_check))


@pytest.mark.parametrize(
    "field, change",
    [
        ("activations", lambda a: a * 1.01),  # a layer captured with the wrong scale
        ("weights", lambda w: w.roll(1, dims=1)),  # weights of the wrong channels
        ("score", lambda s: s + 0.1),  # the explained score is not the logit
    ],
)
def test_notebook_fails_when_camlib_is_wrong(before_camlib_check, monkeypatch, field, change):
    original = camlib.cam

    def wrong_cam(*args, **kwargs):
        result = original(*args, **kwargs)
        return dataclasses.replace(result, **{field: change(getattr(result, field))})

    monkeypatch.setattr(camlib, "cam", wrong_cam)
    with pytest.raises(AssertionError):
        run_cells(CHECK_CELLS, dict(before_camlib_check))


def test_key_figure_is_deterministic_and_small():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    import camlib.figures.nb00 as fig00

    first = fig00.key_figure()
    second = fig00.key_figure()
    try:
        assert first.dpi <= 100 and len(first.axes) == len(second.axes) >= 6
        first.canvas.draw()
        second.canvas.draw()
        import numpy as np

        assert np.array_equal(np.asarray(first.canvas.buffer_rgba()), np.asarray(second.canvas.buffer_rgba()))
    finally:
        plt.close(first)
        plt.close(second)
