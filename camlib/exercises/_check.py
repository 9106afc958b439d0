"""Shared machinery of the exercise checks.

A check runs the learner's function on several inputs, compares each answer with the
reference, and raises :class:`ExerciseError` with what differs and a hint when they
disagree. It never prints the reference answer's code.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch

__all__ = ["ExerciseError", "compare_outputs", "passed"]


class ExerciseError(AssertionError):
    """The learner's answer differs from the reference; the message says how and gives a hint."""


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def compare_outputs(
    name: str,
    learner: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Iterable[Sequence[Any]],
    hints: Sequence[tuple[Callable[..., bool], str]] = (),
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Run ``learner(*case)`` and ``reference(*case)`` on every case and compare.

    ``hints`` is a list of ``(predicate, hint)``: when the answers differ, the first
    predicate ``predicate(got, expected, *case)`` that returns True chooses the hint shown.
    Raises :class:`ExerciseError` on the first case that differs.
    """
    for number, case in enumerate(cases, start=1):
        try:
            got = learner(*case)
        except NotImplementedError:
            raise
        except Exception as error:  # the learner's code failed: say where, keep the traceback
            raise ExerciseError(
                f"{name}: your function raised {type(error).__name__}: {error} on test case {number}."
            ) from error
        expected = reference(*case)
        if not isinstance(got, torch.Tensor):
            try:
                got = torch.as_tensor(got, dtype=expected.dtype)
            except Exception:
                raise ExerciseError(
                    f"{name}: expected a {_describe(expected)}, got a {_describe(got)} on test case {number}."
                ) from None
        if got.shape != expected.shape:
            raise ExerciseError(
                f"{name}: on test case {number} your answer has shape {tuple(got.shape)}, "
                f"the expected answer has shape {tuple(expected.shape)}."
                + _hint(hints, got, expected, case)
            )
        got = got.to(expected.dtype)
        if not torch.allclose(got, expected, rtol=rtol, atol=atol):
            worst = (got - expected).abs().max().item()
            raise ExerciseError(
                f"{name}: on test case {number} your answer differs from the expected one "
                f"(largest absolute difference {worst:.3g})." + _hint(hints, got, expected, case)
            )


def _hint(hints: Sequence[tuple[Callable[..., bool], str]], got: Any, expected: Any, case: Sequence[Any]) -> str:
    for predicate, text in hints:
        try:
            if predicate(got, expected, *case):
                return f"\nHint: {text}"
        except Exception:
            continue
    return ""


def passed(name: str) -> None:
    """Print the success line shown under a correct answer.

    Returns nothing: a check cell's verdict is its printed line (or its ExerciseError), and a
    cell whose last expression is None shows no value, which is what nbgrader expects of an
    autograded test cell (it warns about, and may reject, a non-numeric result such as True).
    """
    print(f"Correct: {name} agrees with the reference on every test case.")
