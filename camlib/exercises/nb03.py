"""Checks for the exercises of notebook 03 (class activation maps).

Exercise 1 (predict), ``predicted_signs``: for the thread's distractor image (a triangle and a cross,
``camlib.data.thread()[THREAD["distractor"]]``) and the course's ``gap`` network, the learner
predicts the sign (+1 or -1) of the mean of the upsampled CAM ``M_c`` over each object's pixels, for
the classes "triangle" and "cross": a dict ``{(class, object): sign}`` with four entries. The check
computes the four means with :func:`camlib.cam` and :func:`camlib.upsample`.

Exercise 2 (find a counterexample), ``same_logit_map(M)``: from a CAM ``M`` of shape ``(h, w)``
build another map with exactly the same mean (so, by conservation, the same logit) whose maximum
lies on a cell that does not touch the object. Conservation alone does not make a map an
explanation. The check runs it on the CAMs of the thread's triangle and circle.

Each check explains what differs, with a hint, without printing the reference answer.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._check import ExerciseError

__all__ = ["PAIRS", "check_predicted_signs", "check_same_logit_map", "object_means"]

#: the (class, object) pairs of exercise 1
PAIRS: tuple[tuple[str, str], ...] = (("triangle", "triangle"), ("triangle", "cross"), ("cross", "triangle"),
                                      ("cross", "cross"))


def object_means() -> dict[tuple[str, str], float]:
    """Mean of the upsampled CAM of each class over each object's pixels, on the distractor image."""
    import camlib
    from camlib.data import CLASSES, THREAD, thread

    shapes = thread()
    i = THREAD["distractor"]
    x, masks, kinds = shapes.images[i : i + 1], shapes.object_masks[i], shapes.object_classes[i]
    model = camlib.models.load_model("gap")
    means = {}
    for name in ("triangle", "cross"):
        upsampled = camlib.upsample(camlib.cam(model, x, target=CLASSES.index(name)).raw, tuple(x.shape[-2:]))[0]
        for slot in range(masks.shape[0]):
            if int(kinds[slot]) >= 0:
                means[(name, CLASSES[int(kinds[slot])])] = float(upsampled[masks[slot]].mean())
    return means


def check_predicted_signs(predicted_signs: dict) -> None:
    """Compare the learner's predicted signs with the CAMs of the distractor image."""
    name = "predicted signs"
    if not isinstance(predicted_signs, dict) or set(predicted_signs) != set(PAIRS):
        raise ExerciseError(f"{name}: give a dict with exactly the four keys {list(PAIRS)} and values +1 or -1.")
    if any(v not in (1, -1) for v in predicted_signs.values()):
        raise ExerciseError(f"{name}: every value must be +1 or -1.")
    means = object_means()
    wrong = [pair for pair in PAIRS if (1 if means[pair] > 0 else -1) != predicted_signs[pair]]
    if wrong:
        listing = "; ".join(f"the '{c}' map on the {o}" for c, o in wrong)
        raise ExerciseError(
            f"{name}: {len(wrong)} of 4 signs differ from the network's ({listing}).\nHint: the weights w^c_k of one "
            "class are not the other's: a channel that fires on a triangle's corners can count for 'triangle' and "
            "against 'cross'. Look at the CAMs of every class in the first figure of the notebook, where one image's "
            "object turns the other classes' maps blue."
        )
    print("Correct: " + ", ".join(f"'{c}' on the {o}: {means[(c, o)]:+.2f}" for c, o in PAIRS)
          + ". Each class's map is positive on its own object and negative on the other: CAM is class-discriminative.")


def _cells_touching(mask: Tensor, grid: tuple[int, int]) -> Tensor:
    """(h, w) bool: the cells of a ``grid`` over the (H, W) mask that contain any object pixel."""
    return F.adaptive_max_pool2d(mask[None, None].float(), grid)[0, 0] > 0


def check_same_logit_map(same_logit_map: Callable[[Tensor], Tensor]) -> None:
    """Check that ``same_logit_map(M)`` keeps the mean of M and puts the maximum on a cell off the object."""
    import camlib
    from camlib.data import THREAD, thread

    name = "same_logit_map"
    shapes = thread()
    model = camlib.models.load_model("gap")
    for role in ("triangle", "circle"):
        i = THREAD[role]
        cam = camlib.cam(model, shapes.images[i : i + 1], target=shapes.labels[i : i + 1]).raw[0].double()
        given = cam.clone()
        try:
            other = same_logit_map(given)
        except NotImplementedError:
            raise
        except Exception as error:
            raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}") from error
        if not torch.equal(given, cam):
            raise ExerciseError(f"{name}: your function changed the map it was given; build a new one (M.clone()).")
        if not isinstance(other, Tensor) or tuple(other.shape) != tuple(cam.shape):
            raise ExerciseError(f"{name}: return a tensor of the CAM's shape {tuple(cam.shape)}.")
        other = other.double()
        if not torch.isfinite(other).all():
            raise ExerciseError(f"{name}: your map has NaN or infinite values.")
        if abs(float(other.mean() - cam.mean())) > 1e-6 * max(1.0, float(cam.abs().mean())):
            raise ExerciseError(
                f"{name}: on the {role}, your map's mean is {float(other.mean()):.4f}, the CAM's is "
                f"{float(cam.mean()):.4f}: the logit would change.\nHint: what can you add to a map without "
                "changing its mean?"
            )
        touching = _cells_touching(shapes.masks[i], tuple(cam.shape))
        peak = divmod(int(other.argmax()), cam.shape[-1])
        if bool(touching[peak]):
            raise ExerciseError(
                f"{name}: on the {role}, your map's maximum is at cell {peak}, which touches the object.\nHint: raise "
                "the map on a cell far from the object and lower it elsewhere by the same total."
            )
    print("Correct: your maps have the CAM's mean, so the same logit, and their peak off the object: conservation "
          "fixes the total, not where it sits.")
