r"""CAM-family methods that need no gradient: Ablation-CAM, Score-CAM and Eigen-CAM.

All three keep the CAM recipe ``raw = sum_k w_k A^k``, ``map = ReLU(raw)`` on the activations
``A`` (N, K, h, w) of ``layer``, and find the channel weights ``w`` without backpropagation
(notation of docs/math.md §1, ``y`` the explained score, by default the target's logit):

* **Ablation-CAM** (Desai & Ramaswamy, WACV 2020) intervenes on the layer: ``y_k`` is the score
  when channel ``k`` is set to 0 and everything else is kept, and
  ``w_k = (y - y_k) / |y|``. On a mean-GAP linear head ``y - y_k = W_ck mean_ij A^k_ij``
  exactly (channel k's term of the logit), and ``sum_k (y - y_k) = y - b_c``.
* **Score-CAM** (Wang et al., CVPR-W 2020) intervenes on the input: each channel, upsampled to
  the input (bilinear, ``align_corners=False``) and min-max scaled to [0, 1], masks the image,
  ``H^k = minmax(U(A^k))``, and ``w_k = y(x * H^k) - y(0 * x)``, the paper's "increase of
  confidence" over the all-zero mask. A constant channel has no mask (0/0); it gets the
  all-zero mask, so ``w_k = 0`` exactly, without a forward pass (the authors' code skips it).
  ``channel_softmax=True`` replaces ``w`` by ``softmax_k(w)`` (Algorithm 1 of the paper's v2).
* **Eigen-CAM** (Muhammad & Yeasin, IJCNN 2020) uses no score at all: with ``X`` the (Z, K)
  matrix of positions by channels and ``v_1`` its first right singular vector,
  ``w = v_1`` and ``raw = X v_1 = sigma_1 u_1``: the first principal direction of the
  activations, not centred. It is the same for every class.

Cost and batching
-----------------
Ablation-CAM needs K + 1 passes through the layers *after* ``layer``. camlib runs the layers
before it once per chunk of ``batch_size`` channels, on the one image, and hands the rest of the
network ``batch_size`` ablated copies of the activations (the batch grows at the layer). The
first chunk also carries the unablated activations, and their score must reproduce the clean
forward pass; a model whose forward cannot run that way (it fixes the batch size, or
concatenates tensors from before the layer along the batch) falls back to repeating the input
image, as pytorch-grad-cam does, which costs K full forward passes. Score-CAM needs K + 2 full
forward passes (clean, all-zero mask, one per non-constant channel), ``batch_size`` masked images
at a time, across images and channels, in channels-last memory format (faster convolutions; the
default layout when the model's forward needs it). Eigen-CAM needs one forward pass and one SVD
per image.

Deliberate differences from pytorch-grad-cam (each measured by a test)
----------------------------------------------------------------------
* ``AblationCAM`` divides by ``y`` (every weight flips sign when the logit is negative) and
  ablates to ``min(A) - 1e7`` unless the layer's minimum is exactly 0; camlib divides by
  ``|y|`` (by 1 when ``y = 0``) and ablates to 0, as the paper does.
* ``ScoreCAM`` upsamples with ``align_corners=True``, adds 1e-8 to the min-max denominator,
  uses no baseline and always applies the channel softmax; with ``channel_softmax=True`` camlib
  differs from it only in the upsampling and the 1e-8 (the baseline cancels in the softmax).
* ``EigenCAM`` centres each channel before the SVD and fixes no sign (its map can come out
  negated); camlib does not centre, and fixes the sign of ``v_1`` so that ``sum_k v_1k >= 0``.
  Equivalently the map correlates positively with the channel sum:
  ``<X v_1, X 1> = sigma_1^2 sum_k v_1k``. For ``A >= 0`` (a post-ReLU layer) ``v_1 >= 0`` can be
  chosen (Perron-Frobenius), so this sign makes the whole map non-negative.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ._hooks import capture_layer, model_guard, outside_inference_mode
from ._targets import (
    LOW_PRECISION,
    check_count,
    check_input,
    check_model,
    check_score,
    find_layer,
    resolve_target,
    run_model,
    select_score,
)
from .cam_family import _result
from .postprocess import normalize, upsample
from .results import CamResult

__all__ = ["ablation_cam", "score_cam", "eigen_cam"]


def _prepare(model: object, layer: object, score: str) -> tuple[nn.Module, str, nn.Module]:
    model = check_model(model)
    check_score(score, model)
    name, module = find_layer(model, layer)
    return model, name, module


def _forward_capture(
    model: nn.Module, x: Tensor, module: nn.Module, name: str, target: object, score: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One forward pass without gradients: ``(A, out, target, y)``."""
    with capture_layer(module, name) as cap:
        out = run_model(model, x)
    a = cap.single().detach()
    t = resolve_target(target, out, model)
    return a, out, t, select_score(out, t, score, model)


# --------------------------------------------------------------------------- Ablation-CAM


@contextmanager
def _replace_output(module: nn.Module, replacement: Tensor) -> Iterator[list[int]]:
    """For the body only, ``module`` returns ``replacement`` instead of its own output."""
    calls = [0]

    def hook(mod: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        calls[0] += 1
        return replacement

    handle = module.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def _ablated_scores(
    model: nn.Module, module: nn.Module, xi: Tensor, stack: Tensor, target: Tensor, score: str, expand: bool
) -> Tensor:
    """Scores of the copies in ``stack`` (B, K, h, w) put in place of the layer's output for ``xi``."""
    b = stack.shape[0]
    inp = xi if expand else xi.expand(b, *xi.shape[1:])
    with _replace_output(module, stack) as calls:
        out = model(inp)
    if calls[0] != 1 or not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != b:
        raise RuntimeError("the model did not run with a replaced batch")
    return select_score(out, target.expand(b), score, model)


def _expanded_first_chunk(
    model: nn.Module,
    module: nn.Module,
    xi: Tensor,
    ai: Tensor,
    stack: Tensor,
    target: Tensor,
    score: str,
    clean: Tensor,
) -> Tensor | None:
    """Scores of ``stack`` with the batch grown at the layer, or ``None`` if the model cannot run so.

    The unablated activations ``ai`` ride along as row 0: their score must reproduce the clean
    score ``clean`` (to a rounding tolerance), else the expansion is not trusted.
    """
    try:
        scores = _ablated_scores(model, module, xi, torch.cat([ai, stack]), target, score, True)
    except Exception:  # the model's forward assumes its input batch size: fall back
        return None
    tol = 1e3 * torch.finfo(scores.dtype).eps * (1.0 + float(clean.abs()))
    if not bool(torch.isfinite(scores).all()) or float((scores[0] - clean).abs()) > tol:
        return None
    return scores[1:]


@outside_inference_mode
def ablation_cam(
    model: nn.Module,
    x: Tensor,
    layer: object,
    *,
    target: object = None,
    score: str = "logit",
    batch_size: int = 64,
) -> CamResult:
    r"""Ablation-CAM: ``w_k = (y - y_k) / |y|``, ``y_k`` = the score with channel ``k`` of ``layer`` set to 0.

    ``raw = sum_k w_k A^k``, ``map = ReLU(raw)``. The per-channel drops ``y - y_k`` (N, K) are in
    ``extras["drops"]``; dividing by ``|y|`` (by 1 where ``y = 0``) rescales each image's map by one
    positive factor, as the paper's ``/ y`` does for a positive score, without flipping the map
    when the score is negative. ``extras["expanded"]`` says whether the layers before ``layer``
    ran once per chunk (True) or once per ablated copy (the fallback). ``batch_size`` ablated
    copies are evaluated per forward pass. ``gradients`` is ``None``. See the module docstring.
    """
    model, name, module = _prepare(model, layer, score)
    batch_size = check_count(batch_size, "batch_size")
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        a, _, t, y = _forward_capture(model, x, module, name, target, score)
        n, k = a.shape[:2]
        drops = torch.empty(n, k, dtype=y.dtype, device=y.device)
        expand: bool | None = None
        for i in range(n):
            xi = x[i : i + 1]
            for start in range(0, k, batch_size):
                channels = torch.arange(start, min(k, start + batch_size), device=a.device)
                stack = a[i].expand(len(channels), *a.shape[1:]).clone()
                stack[torch.arange(len(channels), device=a.device), channels] = 0
                scores = None
                if expand is None:
                    scores = _expanded_first_chunk(model, module, xi, a[i : i + 1], stack, t[i], score, y[i])
                    expand = scores is not None
                if scores is None:
                    scores = _ablated_scores(model, module, xi, stack, t[i], score, expand)
                drops[i, channels] = y[i] - scores
        _refuse_unconnected(model, module, x, a, t, y, drops, score, name)
        scale = y.abs()
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return _result(drops / scale[:, None], a, None, t, y, "ablation_cam", name, score, drops=drops, expanded=expand)


def _refuse_unconnected(
    model: nn.Module, module: nn.Module, x: Tensor, a: Tensor, t: Tensor, y: Tensor, drops: Tensor, score: str, name: str
) -> None:
    """Raise when no ablation moved the score because the score does not depend on the layer at all.

    Only checked when every drop is within rounding of 0: then the whole output of the layer is
    shifted once; a score that still does not move is not computed from this layer (a module off
    the path to the output), and an all-zero map would say nothing.
    """
    tol = 1e3 * torch.finfo(y.dtype).eps * (1.0 + y.abs())
    if bool((drops.abs() > tol[:, None]).any()):
        return
    shifted = a + (a.abs().amax() + 1.0)
    with _replace_output(module, shifted):
        out = run_model(model, x)
    if bool(((select_score(out, t, score, model) - y).abs() <= tol).all()):
        raise ValueError(
            f"the explained score does not depend on layer {name!r}: replacing its whole output changes "
            "nothing (a module that is not on the path to the output), so every ablation map would "
            "be zero. Choose a layer that the model's output is computed from."
        )


# --------------------------------------------------------------------------- Score-CAM


@outside_inference_mode
def score_cam(
    model: nn.Module,
    x: Tensor,
    layer: object,
    *,
    target: object = None,
    score: str = "logit",
    batch_size: int = 64,
    channel_softmax: bool = False,
) -> CamResult:
    r"""Score-CAM: ``w_k = y(x * H^k) - y(0 * x)`` with the mask ``H^k = minmax(U(A^k))``.

    ``U`` is bilinear upsampling of channel ``k`` of ``layer`` to the input size
    (``align_corners=False``, :func:`camlib.upsample`) and ``minmax`` scales it to [0, 1]; the mask
    multiplies every input channel of the (model-space) input, so "0" is whatever 0 means to the
    model. A constant channel gets the all-zero mask, so its weight is exactly 0 and it costs no
    forward pass. ``channel_softmax=True`` uses ``softmax_k(w)`` instead (paper v2, Algorithm 1;
    pytorch-grad-cam). ``extras``: ``"masked_scores"`` ``y(x * H^k)`` (N, K),
    ``"baseline_score"`` ``y(0 * x)`` (N,), ``"increase"`` the differences (N, K),
    ``"channel_softmax"``. ``batch_size`` masked images per forward pass.
    """
    model, name, module = _prepare(model, layer, score)
    batch_size = check_count(batch_size, "batch_size")
    if not isinstance(channel_softmax, bool):
        raise TypeError(f"channel_softmax must be True or False; got {channel_softmax!r}.")
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        a, _, t, y = _forward_capture(model, x, module, name, target, score)
        n, k = a.shape[:2]
        zero = torch.zeros_like(x[:1])
        base = select_score(run_model(model, zero).expand(n, -1), t, score, model)
        masked = base[:, None].repeat(1, k)
        flat = a.flatten(2)
        varies = flat.amax(dim=2) > flat.amin(dim=2)
        pairs = varies.nonzero()
        channels_last: bool | None = None  # decided on the first batch
        size = tuple(x.shape[-2:])
        for start in range(0, pairs.shape[0], batch_size):
            idx_n, idx_k = pairs[start : start + batch_size].unbind(1)
            mask = normalize(upsample(a[idx_n, idx_k], size).to(x.dtype), "minmax")
            out, channels_last = _forward_masked(model, x[idx_n] * mask[:, None], channels_last)
            masked[idx_n, idx_k] = select_score(out, t[idx_n], score, model)
        increase = masked - base[:, None]
        weights = torch.softmax(increase, dim=1) if channel_softmax else increase
        return _result(
            weights, a, None, t, y, "score_cam", name, score,
            masked_scores=masked, baseline_score=base, increase=increase, channel_softmax=channel_softmax,
        )


def _forward_masked(model: nn.Module, batch: Tensor, channels_last: bool | None) -> tuple[Tensor, bool]:
    """``run_model`` on the masked images, in channels-last memory format when the model accepts it.

    Convolutions (oneDNN on CPU, cuDNN on GPU) run faster on channels-last inputs; the values are
    the same up to rounding. A model whose forward needs the default layout (a ``.view`` on a conv
    output, say) raises on the first batch; camlib then keeps the default layout for the call.
    """
    if channels_last is not False:
        try:
            return run_model(model, batch.contiguous(memory_format=torch.channels_last)), True
        except RuntimeError:
            if channels_last:  # it worked before: this error is the model's own
                raise
    return run_model(model, batch), False


# --------------------------------------------------------------------------- Eigen-CAM


@outside_inference_mode
def eigen_cam(
    model: nn.Module, x: Tensor, layer: object, *, target: object = None, score: str = "logit"
) -> CamResult:
    r"""Eigen-CAM: ``w = v_1``, the first right singular vector of ``X`` (positions x channels), so
    ``raw = X v_1 = sigma_1 u_1``; no centring; sign fixed so that ``sum_k v_1k >= 0``.

    Class-agnostic: ``target`` and ``score`` only choose the score reported in ``.score``; the map
    is the same for every class. ``extras["singular_values"]`` (N, min(Z, K)) holds
    ``sigma_1 >= sigma_2 >= ...``, so ``sigma_1^2 / sum sigma^2`` is the share of the activations'
    energy the map keeps. If ``v_1`` sums to exactly 0 its largest entry is made positive. An
    all-zero layer gives zero weights. ``gradients`` is ``None``.
    """
    model, name, module = _prepare(model, layer, score)
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        a, _, t, y = _forward_capture(model, x, module, name, target, score)
        matrix = a.flatten(2).transpose(1, 2)  # (N, Z, K)
        if matrix.dtype in LOW_PRECISION:  # no SVD in float16 / bfloat16: decompose in float32
            _, sigma, vh = torch.linalg.svd(matrix.float(), full_matrices=False)
            sigma, vh = sigma.to(a.dtype), vh.to(a.dtype)
        else:
            _, sigma, vh = torch.linalg.svd(matrix, full_matrices=False)
        v = vh[:, 0, :]
        total = v.sum(dim=1)
        largest = v.gather(1, v.abs().argmax(dim=1, keepdim=True)).squeeze(1)
        sign = torch.where(total != 0, total.sign(), largest.sign())
        v = v * sign[:, None]
        v = torch.where(sigma[:, :1] > 0, v, torch.zeros_like(v))
        return _result(v, a, None, t, y, "eigen_cam", name, score, singular_values=sigma)
