"""Checked claims that say what they checked: an ``assert`` that also prints one line.

A notebook states a claim and checks it on real numbers. A bare ``assert`` is silent when it holds,
so the learner cannot tell a checked cell from one that did nothing. These two helpers assert AND
print the number behind the verdict::

    claim(n_hits >= 3, f"{n_hits} of the top 4 channels are brighter on the object")
    # checked: 3 of the top 4 channels are brighter on the object
    check_close("conv2d_scratch = F.conv2d", ours, torch_result, atol=1e-12)
    # checked: conv2d_scratch = F.conv2d (max |difference| 0.0, tolerance 1e-12)

Both raise ``AssertionError`` with the same sentence when the claim is false.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["claim", "check_close"]


def claim(condition: Any, message: str) -> None:
    """Assert ``condition`` and print ``checked: <message>``; put the numbers in the message."""
    if isinstance(condition, torch.Tensor):
        if condition.numel() != 1:
            raise TypeError("claim needs one truth value: reduce the tensor first, e.g. with .all()")
        condition = bool(condition)
    if not condition:
        raise AssertionError(f"claim failed: {message}")
    print(f"checked: {message}")


def check_close(what: str, got: Any, expected: Any, atol: float = 1e-6, rtol: float = 0.0) -> None:
    """Assert ``|got - expected| <= atol + rtol |expected|`` everywhere and print the largest difference.

    ``got`` and ``expected`` are tensors, arrays or numbers of broadcastable shapes. Prints
    ``checked: <what> (max |difference| <d>, tolerance <atol>[ + <rtol> |expected|])``.
    """
    a = torch.as_tensor(got).detach().to("cpu", torch.float64)
    b = torch.as_tensor(expected).detach().to("cpu", torch.float64)
    try:
        diff = (a - b).abs()
    except RuntimeError as error:
        raise AssertionError(f"{what}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be compared") from error
    worst = float(diff.max()) if diff.numel() else 0.0
    bound = " + ".join(([f"tolerance {atol:.0e}"] if atol or not rtol else []) + ([f"{rtol:.0e} |expected|"] if rtol else []))
    bound = bound if atol or not rtol else f"relative tolerance {rtol:.0e}"
    line = f"{what} (max |difference| {worst:.1e}, {bound})"
    if not bool(torch.all(diff <= atol + rtol * b.abs())) or not torch.isfinite(diff).all():
        raise AssertionError(f"claim failed: {line}")
    print(f"checked: {line}")
