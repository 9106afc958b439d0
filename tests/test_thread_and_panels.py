"""The course-layer helpers every notebook uses: the thread of images, panels compared on one
colour scale, and the printing asserts ``claim`` / ``check_close``."""

from __future__ import annotations

import pytest
import torch

import camlib
from camlib import plotting
from camlib.data import CLASSES, TEST_SEED, THREAD, THREAD_SOURCES, THREAD_TRIANGLE, make_shapes, test_set, thread
from camlib.exercises import check_close, claim


def test_thread_holds_the_documented_images():
    t = thread()
    assert len(t) == len(THREAD) == 7 and sorted(THREAD.values()) == list(range(7))
    for role, index in THREAD.items():
        instances, distractors, n, source = THREAD_SOURCES[role]
        original = test_set()[source] if (instances, distractors, n) == (1, 0, 1000) else make_shapes(
            n, seed=TEST_SEED, instances=instances, distractors=distractors)[source]
        assert torch.equal(t.images[index], original.images[0]), role
        assert torch.equal(t.masks[index], original.masks[0]) and t.masks[index].any(), role
    for name in ("circle", "square", "triangle", "cross"):
        assert CLASSES[int(t.labels[THREAD[name]])] == name
    assert THREAD_TRIANGLE == THREAD["triangle"]
    assert (t.object_classes[THREAD["multi"]] == 2).all()  # three triangles
    assert t.object_classes[THREAD["distractor"]].tolist() == [2, 3, -1]  # a triangle and a cross
    assert not t.object_masks[THREAD["circle"], 1:].any()  # empty slots beyond the image's one object


@pytest.mark.parametrize("name", ["gap", "fc"])
def test_the_course_models_classify_the_thread_correctly(name):
    model = camlib.models.load_model(name)
    with torch.no_grad():
        predicted = model(thread().images).argmax(1)
    assert torch.equal(predicted, thread().labels)


def test_map_scale_is_symmetric_for_signed_maps_and_starts_at_zero_otherwise():
    assert plotting.map_scale([torch.tensor([[-1.0, 3.0]]), torch.tensor([[2.0]])]) == (-3.0, 3.0, plotting.SIGNED_CMAP)
    assert plotting.map_scale(torch.tensor([[0.5, 2.0]])) == (0.0, 2.0, plotting.HEAT_CMAP)
    assert plotting.map_scale(torch.zeros(2, 2)) == (0.0, 1.0, plotting.HEAT_CMAP)
    assert plotting.map_scale(torch.tensor([[0.5, 2.0]]), signed=True)[:2] == (-2.0, 2.0)


def test_compare_maps_puts_every_panel_on_one_scale_and_labels_zero_panels():
    maps = torch.stack([torch.full((4, 4), 2.0), torch.zeros(4, 4), torch.full((4, 4), -0.5)])
    fig = plotting.compare_maps(maps, ["a", "b", "c"], images=thread().images[:3], masks=thread().masks[:3],
                                label="drop")
    panels = [ax for ax in fig.axes if ax.get_title() in ("a", "b", "c")]
    limits = {artist.get_clim() for ax in panels for artist in ax.get_images()[1:]}
    assert limits == {(-2.0, 2.0)}
    texts = [text.get_text() for ax in panels for text in ax.texts]
    assert texts == ["all zero"]
    assert len(fig.axes) == 4  # three panels and one colourbar
    png = plotting.figure_to_png(fig)
    assert png[:4] == b"\x89PNG"


def test_compare_maps_errors_say_what_to_do():
    with pytest.raises(ValueError, match="one title per map"):
        plotting.compare_maps(torch.zeros(2, 3, 3), ["only one"])
    with pytest.raises(ValueError, match="one per map"):
        plotting.compare_maps(torch.zeros(2, 3, 3), images=torch.rand(3, 3, 8, 8))


def test_no_rainbow_defaults():
    import inspect

    assert inspect.signature(plotting.overlay).parameters["cmap"].default == plotting.HEAT_CMAP
    assert inspect.signature(plotting.show_maps).parameters["cmap"].default == plotting.HEAT_CMAP


def test_claim_prints_what_it_checked_and_fails_loudly(capsys):
    claim(torch.tensor(True), "3 of 4 channels are brighter on the object")
    check_close("ours = torch's", torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64) + 1e-13,
                atol=1e-12)
    out = capsys.readouterr().out.splitlines()
    assert out == ["checked: 3 of 4 channels are brighter on the object",
                   "checked: ours = torch's (max |difference| 1.0e-13, tolerance 1e-12)"]
    with pytest.raises(AssertionError, match="claim failed: nothing"):
        claim(False, "nothing")
    with pytest.raises(AssertionError, match=r"max \|difference\| 1.0e\+00"):
        check_close("far", torch.zeros(2), torch.ones(2))
    with pytest.raises(AssertionError, match="claim failed"):
        check_close("nan", torch.tensor([float("nan")]), torch.tensor([0.0]), atol=1.0)
    with pytest.raises(TypeError, match="reduce the tensor"):
        claim(torch.tensor([True, False]), "two values")
