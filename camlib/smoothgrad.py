r"""SmoothGrad and its variants: average a pixel attribution over noisy copies of the input.

With ``M`` any of camlib's pixel attributions (saliency, gradient x input, Integrated Gradients,
guided backpropagation, ...), ``n`` samples and ``eps_s ~ N(0, sigma^2 I)``:

* SmoothGrad (Smilkov et al., 2017):   ``SG   = (1/n) sum_s M(x + eps_s)``
* SmoothGrad-squared (Hooker et al., 2019): ``SG^2 = (1/n) sum_s M(x + eps_s)^2``
* VarGrad (Adebayo et al., 2018):      ``VG   = SG^2 - SG * SG`` (the population variance)

The noise level is relative to the input's range, as in the paper ("the noise level
corresponds to sigma / (x_max - x_min)"): ``sigma_i = noise_level * (max x_i - min x_i)`` for
each image ``i`` separately, the range taken over all its channels and pixels (an image with
one constant value gets ``sigma = 0``). The target is resolved at the clean input (argmax if
``None``) and kept for every noisy copy; ``score`` is the clean score.

The explainer sees only the noisy copy, so wrapping ``camlib.gradient_x_input`` multiplies each
noisy gradient by ``x + eps_s`` (as Captum's ``NoiseTunnel(InputXGradient)`` does), not by ``x``.

Exact facts the tests check: ``noise_level=0`` returns the explainer's values (VarGrad 0); for
a linear model and ``camlib.saliency(absolute=False)``, SG = w, SG^2 = w^2 and VarGrad = 0 for
every sigma and n.

Randomness and batching
-----------------------
The noise comes from a private ``torch.Generator`` seeded with ``seed`` (the global random
state is left alone): draw ``s`` is ``torch.randn(x.shape, generator=g)`` taken ``s``-th in
sequence, scaled per image by ``sigma_i``, so a result depends on ``seed`` and ``samples``
only, never on ``batch_size`` (the number of noisy images per explainer call). The mean and
variance are accumulated around each image's first sample, which keeps VarGrad free of the
cancellation of ``E[M^2] - E[M]^2``.

Compared with Captum's ``NoiseTunnel``: its ``stdevs`` is absolute, in model-input units
(default 1.0, ``nt_samples=5``), one value for the whole batch, drawn from the global random
state; the reductions are the same (its VarGrad is the population variance too), and
``NoiseTunnel(Saliency)`` averages ``|gradient|`` because Captum's ``Saliency`` defaults to
``abs=True``, as ``camlib.saliency`` does.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._hooks import model_guard, outside_inference_mode
from ._targets import check_count, check_input, check_model, check_score, resolve_target, run_model, select_score
from .results import Attribution

__all__ = ["VARIANTS", "smooth_grad"]

#: the reductions over the noisy samples
VARIANTS = ("smoothgrad", "squared", "vargrad")


def _explainer_name(explainer: Callable[..., Any]) -> str:
    return getattr(explainer, "__name__", type(explainer).__name__)


@outside_inference_mode
def smooth_grad(
    model: nn.Module,
    x: Tensor,
    explainer: Callable[..., Attribution],
    *,
    target: object = None,
    score: str = "logit",
    variant: str = "smoothgrad",
    noise_level: float = 0.15,
    samples: int = 25,
    seed: int = 0,
    batch_size: int = 64,
    **options: Any,
) -> Attribution:
    r"""SmoothGrad of ``explainer``: the mean (``"smoothgrad"``), mean square (``"squared"``) or
    variance (``"vargrad"``) of ``explainer(model, x + eps_s, target=..., score=score, **options)``
    over ``samples`` draws ``eps_s ~ N(0, sigma_i^2)``, ``sigma_i = noise_level * (max x_i - min x_i)``.

    ``explainer`` is a camlib pixel attribution (e.g. ``camlib.saliency``); ``options`` are passed
    on to it (e.g. ``absolute=False``, ``steps=`` for Integrated Gradients, ``layer=`` for
    ``camlib.guided_grad_cam``). ``extras``:
    ``"explainer"`` (its name), ``"variant"``, ``"noise_level"``, ``"sigma"`` (N,), ``"samples"``,
    ``"seed"``. The paper recommends a noise level of 10-20 %.
    """
    model = check_model(model)
    check_score(score, model)
    if not callable(explainer):
        raise TypeError(
            "explainer must be one of camlib's pixel attributions, passed as the function itself, "
            f"e.g. camlib.saliency; got {type(explainer).__name__}."
        )
    try:
        parameters = inspect.signature(explainer).parameters
    except (TypeError, ValueError):  # builtins without a signature
        parameters = None
    takes_layer = parameters is not None and "layer" in parameters
    if parameters is not None and not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(options) - set(parameters))
        if unknown:
            accepted = [n for n in parameters if n not in ("model", "x", "target", "score")]
            raise TypeError(
                f"{_explainer_name(explainer)} has no option {unknown}; the options smooth_grad can pass "
                f"on to it are {accepted}."
            )
    if takes_layer and "layer" not in options:
        raise TypeError(
            f"{_explainer_name(explainer)} takes a layer: smooth_grad averages pixel attributions, one "
            "value per input element. Pass camlib.saliency, camlib.gradient_x_input, "
            "camlib.integrated_gradients, camlib.guided_backprop or camlib.deconvnet, or "
            "camlib.guided_grad_cam with layer=...; a CAM-family method's map lives at the layer's "
            "resolution and cannot be smoothed here."
        )
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}.")
    if isinstance(noise_level, bool) or not isinstance(noise_level, numbers.Real):
        raise TypeError(f"noise_level must be a number (a fraction of the input range); got {noise_level!r}.")
    noise_level = float(noise_level)
    if not (noise_level >= 0 and noise_level < float("inf")):
        raise ValueError(f"noise_level must be finite and >= 0 (0.1 to 0.2 is typical); got {noise_level}.")
    samples = check_count(samples, "samples")
    batch_size = check_count(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int; got {seed!r}.")
    seed = int(seed)

    with model_guard(model):
        return _smooth(model, x, explainer, target, score, variant, noise_level, samples, seed, batch_size, options)


def _smooth(
    model: nn.Module,
    x: Tensor,
    explainer: Callable[..., Attribution],
    target: object,
    score: str,
    variant: str,
    noise_level: float,
    samples: int,
    seed: int,
    batch_size: int,
    options: dict[str, Any],
) -> Attribution:
    with torch.no_grad():
        x = check_input(x, model)
        out = run_model(model, x)
        t = resolve_target(target, out, model)
        y = select_score(out, t, score, model)
    n = x.shape[0]
    span = (x.flatten(1).amax(dim=1) - x.flatten(1).amin(dim=1)).detach()
    sigma = noise_level * span
    shape = (-1,) + (1,) * (x.ndim - 1)
    generator = torch.Generator(device=x.device).manual_seed(seed)

    def explain(batch: Tensor, index: Tensor) -> Tensor:
        result = explainer(model, batch, target=t[index], score=score, **options)
        if not isinstance(result, Attribution):
            raise TypeError(
                f"smooth_grad averages pixel attributions; {_explainer_name(explainer)} returned "
                f"{type(result).__name__}. Pass a function that returns camlib.Attribution, such as "
                "camlib.saliency, camlib.gradient_x_input, camlib.integrated_gradients or "
                "camlib.guided_backprop."
            )
        values = result.values.detach()
        if values.shape != batch.shape:
            raise ValueError(
                f"{_explainer_name(explainer)} returned values of shape {tuple(values.shape)} for "
                f"inputs of shape {tuple(batch.shape)}; smooth_grad needs one value per input element."
            )
        return values

    def draw() -> Tensor:
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return (x + eps * sigma.view(shape)).detach()

    rows = torch.arange(n, device=x.device)
    # Each image's first sample (draw 0) is its pivot; every sample is accumulated as its
    # difference from the pivot. Draws are taken in order and cut into full batches.
    pivot: Tensor | None = None
    has_pivot = torch.zeros(n, dtype=torch.bool, device=x.device)
    total: Tensor | None = None
    total_sq: Tensor | None = None
    pending_x: list[Tensor] = []
    pending_n: list[Tensor] = []

    def flush() -> None:
        nonlocal pivot, total, total_sq
        batch, index = torch.cat(pending_x), torch.cat(pending_n)
        pending_x.clear()
        pending_n.clear()
        values = explain(batch, index)
        if pivot is None:
            pivot = torch.zeros((n, *values.shape[1:]), dtype=values.dtype, device=values.device)
            total, total_sq = torch.zeros_like(pivot), torch.zeros_like(pivot)
        first: dict[int, int] = {}
        for row, image in enumerate(index.tolist()):
            if not has_pivot[image] and image not in first:
                first[image] = row
        if first:
            images = torch.tensor(list(first), device=index.device)
            pivot[images] = values[torch.tensor(list(first.values()), device=index.device)]
            has_pivot[images] = True
        d = values - pivot[index]
        total.index_add_(0, index, d)
        total_sq.index_add_(0, index, d * d)

    queued = 0
    for _ in range(samples):
        noisy = draw()
        start = 0
        while start < n:
            take = min(n - start, batch_size - queued)
            pending_x.append(noisy[start : start + take])
            pending_n.append(rows[start : start + take])
            queued += take
            start += take
            if queued == batch_size:
                flush()
                queued = 0
    if pending_x:
        flush()
    mean_d = total / samples
    mean = pivot + mean_d
    var = (total_sq / samples - mean_d * mean_d).clamp_min(0)
    if variant == "smoothgrad":
        values = mean
    elif variant == "squared":
        values = var + mean * mean
    else:
        values = var
    return Attribution(
        values=values,
        target=t,
        score=y.detach(),
        method="smooth_grad",
        score_kind=score,
        extras={
            "explainer": _explainer_name(explainer),
            "variant": variant,
            "noise_level": noise_level,
            "sigma": sigma,
            "samples": samples,
            "seed": seed,
        },
    )
