r"""Every method against every measure on one model: each map computed once, every number with n and an interval.

This is the measurement behind notebook 08 and ``benchmarks/evaluation_table.py``. It uses only
the public camlib API (the methods, :mod:`camlib.metrics`, :mod:`camlib.statistics`) and adds
three things of its own:

* **reference maps** with a known answer (:func:`reference_maps`): the object mask itself
  (``"oracle"``), its complement (``"inverted"``), i.i.d. uniform noise (``"random"``) and a
  Gaussian **centre prior** (``"centre"``, :func:`centre_prior`);
* **the known-answer check of a measure** (:func:`check_measure`, docs/math.md 10.20): the oracle
  must beat the random map, the centre prior and the inverted mask, each margin a paired
  bootstrap interval that excludes 0, before the measure ranks anything;
* :func:`evaluate`, which explains the held-out images once per method and class and scores the
  maps with every measure; :class:`Evaluation` turns the per-image values into intervals
  (:meth:`Evaluation.interval`) and paired differences (:meth:`Evaluation.difference`).

Measures (:data:`MEASURES`; ``+`` higher is better, ``-`` lower is better):

* localisation: ``pointing`` (+, :func:`camlib.metrics.pointing_game`, shared ties, Zhang et
  al.'s tolerance scaled to the image), ``energy`` (+, :func:`camlib.metrics.energy_inside`),
  ``iou`` (+, :func:`camlib.metrics.iou` at 20 % of the maximum);
* faithfulness: ``deletion`` (-, most relevant first, :data:`DELETION_SUBSTRATE`) and
  ``insertion`` (+, :data:`INSERTION_SUBSTRATE`), softmax probability, ``steps`` steps; the
  substrates are the ones the known-answer check passes (notebook 08);
* class discrimination (:func:`camlib.metrics.class_discrimination`): ``wrong_energy`` (-, the
  energy on the object of the maps that explain the wrong classes) and ``cosine`` (-, the
  similarity of true-class and wrong-class maps);
* sanity: ``model_randomisation`` and ``data_randomisation`` (-, Spearman correlation of the
  trained model's map with the map once the output layer is re-initialised, the first step of
  the cascade, and with the map of the same architecture trained on permuted labels).

Every map is the explanation's :func:`camlib.metrics.to_map` (a CAM's ``.map``, a pixel
attribution summed over its channels, signed), explained for the image's **true label**.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from . import metrics
from .statistics import Bootstrap, Interval

__all__ = [
    "REFERENCES",
    "CAM_METHODS",
    "PIXEL_METHODS",
    "METHODS",
    "COSTLY",
    "LABELS",
    "MEASURES",
    "DELETION_SUBSTRATE",
    "INSERTION_SUBSTRATE",
    "SETTINGS",
    "available_methods",
    "fast_copy",
    "explain",
    "centre_prior",
    "reference_maps",
    "MeasureCheck",
    "check_measure",
    "substrate_check",
    "Evaluation",
    "evaluate",
]

#: Maps with a known answer, in table order.
REFERENCES: tuple[str, ...] = ("oracle", "inverted", "random", "centre")
#: CAM-family methods (explained at the model's last convolutional block).
CAM_METHODS: tuple[str, ...] = (
    "cam",
    "grad_cam",
    "grad_cam_plus",
    "grad_cam_pp",
    "xgrad_cam",
    "hires_cam",
    "layer_cam",
    "ablation_cam",
    "score_cam",
    "eigen_cam",
)
#: Pixel attributions (and Guided Grad-CAM, which multiplies one by Grad-CAM).
PIXEL_METHODS: tuple[str, ...] = (
    "saliency",
    "gradient_x_input",
    "integrated_gradients",
    "smooth_grad",
    "occlusion",
    "guided_backprop",
    "deconvnet",
    "guided_grad_cam",
)
#: Every method the table knows, in table order (those camlib does not have yet are skipped).
METHODS: tuple[str, ...] = CAM_METHODS + PIXEL_METHODS
#: Methods that cost many passes per image: scored on fewer images (``n_costly``).
COSTLY: tuple[str, ...] = ("integrated_gradients", "smooth_grad", "occlusion", "ablation_cam", "score_cam")
#: Display names.
LABELS: dict[str, str] = {
    "oracle": "oracle (mask)",
    "inverted": "inverted mask",
    "random": "random map",
    "centre": "centre prior",
    "cam": "CAM",
    "grad_cam": "Grad-CAM",
    "grad_cam_plus": "Grad-CAM+",
    "grad_cam_pp": "Grad-CAM++",
    "xgrad_cam": "XGrad-CAM",
    "hires_cam": "HiResCAM",
    "layer_cam": "LayerCAM",
    "ablation_cam": "Ablation-CAM",
    "score_cam": "Score-CAM",
    "eigen_cam": "Eigen-CAM",
    "saliency": "saliency",
    "gradient_x_input": "gradient x input",
    "integrated_gradients": "Integrated Gradients",
    "smooth_grad": "SmoothGrad",
    "occlusion": "occlusion",
    "guided_backprop": "guided backprop",
    "deconvnet": "DeconvNet",
    "guided_grad_cam": "Guided Grad-CAM",
}
#: measure -> (column title, True if higher is better)
MEASURES: dict[str, tuple[str, bool]] = {
    "pointing": ("pointing game", True),
    "energy": ("energy in mask", True),
    "iou": ("IoU@0.2", True),
    "deletion": ("deletion AUC", False),
    "insertion": ("insertion AUC", True),
    "wrong_energy": ("wrong-class energy", False),
    "cosine": ("true/wrong cosine", False),
    "model_randomisation": ("rho, top layer randomised", False),
    "data_randomisation": ("rho, labels permuted", False),
}
#: Default substrate of deletion (most relevant first), chosen by the known-answer check.
DELETION_SUBSTRATE: str = "mean"
#: Default substrate of insertion (= deletion least relevant first), chosen by the same check.
INSERTION_SUBSTRATE: str = "blur"
#: Settings of the costly methods in the table (documented in notebook 08).
SETTINGS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"steps": 16, "rule": "trapezoid"},
    "occlusion": {"patch": 16, "stride": 8},
    "smooth_grad": {"samples": 16, "noise_level": 0.15},
}


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, then restore the caller's setting.

    The course models on batches of 32 small images gain little from a second thread, and on two
    cores shared with other work a second OpenMP thread spins at every barrier while the first is
    descheduled: the known-answer check of notebook 08 measured 4.3 s of CPU on one thread against
    83.6 s on two, on the same busy 2-core machine (and 5.5 s against 5.5 s on idle cores).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def available_methods(names: Sequence[str] = METHODS) -> tuple[str, ...]:
    """The methods among ``names`` that this camlib provides (the others are skipped)."""
    import camlib

    return tuple(m for m in names if callable(getattr(camlib, m, None)))


def fast_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its 4-D weights laid out channels-last (the caller's model is untouched).

    On a CPU the course models' convolutions and max-pools run about twice as fast this way; the
    numbers are the same up to float rounding (relative differences around 1e-7 in the maps).
    """
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def explain(method: str, model: nn.Module, x: Tensor, target: Any, layer: str) -> Any:
    """One method with the table's settings (:data:`SETTINGS`); returns a CamResult or Attribution.

    CAM-family methods and Guided Grad-CAM explain ``layer``; occlusion replaces each window
    by the image's mean colour (the substrate that removes a shape instead of painting it);
    SmoothGrad averages :func:`camlib.saliency` over noisy copies.
    """
    import camlib

    fn = getattr(camlib, method, None)
    if fn is None:
        raise ValueError(f"camlib has no method {method!r}; available: {available_methods()}")
    if method in CAM_METHODS or method == "guided_grad_cam":
        return fn(model, x, layer, target=target)
    if method == "integrated_gradients":
        return fn(model, x, target=target, **SETTINGS["integrated_gradients"])
    if method == "occlusion":
        baseline = x.mean(dim=(2, 3), keepdim=True)
        return fn(model, x, target=target, baseline=baseline, **SETTINGS["occlusion"])
    if method == "smooth_grad":
        return fn(model, x, camlib.saliency, target=target, **SETTINGS["smooth_grad"])
    return fn(model, x, target=target)


# --------------------------------------------------------------------------- reference maps


def centre_prior(h: int, w: int, sigma: float | None = None) -> Tensor:
    """A Gaussian bump at the image centre, ``exp(-d^2 / (2 sigma^2))``, ``sigma = min(h, w) / 4``.

    ``d`` is the distance of the pixel centre from the image centre ``((h-1)/2, (w-1)/2)``. It
    scores what "look at the middle" scores, with no knowledge of the image.
    """
    sigma = min(h, w) / 4.0 if sigma is None else float(sigma)
    rows = torch.arange(h, dtype=torch.float32) - (h - 1) / 2.0
    cols = torch.arange(w, dtype=torch.float32) - (w - 1) / 2.0
    d2 = rows[:, None] ** 2 + cols[None, :] ** 2
    return torch.exp(-d2 / (2.0 * sigma**2))


def reference_maps(masks: Tensor, seed: int = 0) -> dict[str, Tensor]:
    """The four maps with a known answer for object masks (N, H, W): float tensors (N, H, W).

    ``oracle`` = the mask (1 on the object, 0 elsewhere), ``inverted`` = its complement,
    ``random`` = i.i.d. uniform values from a generator seeded with ``seed``, ``centre`` =
    :func:`centre_prior` for every image.
    """
    if not isinstance(masks, Tensor) or masks.ndim != 3:
        raise ValueError("masks must be a bool tensor (N, H, W), one object mask per image.")
    masks = masks.bool()
    n, h, w = masks.shape
    gen = torch.Generator().manual_seed(int(seed))
    return {
        "oracle": masks.float(),
        "inverted": (~masks).float(),
        "random": torch.rand(n, h, w, generator=gen),
        "centre": centre_prior(h, w).expand(n, h, w).clone(),
    }


# --------------------------------------------------------------------------- validating a measure


_BOOTSTRAPS: dict[tuple[int, int], Bootstrap] = {}


def _bootstrap(n: int, seed: int = 0) -> Bootstrap:
    key = (n, seed)
    if key not in _BOOTSTRAPS:
        _BOOTSTRAPS[key] = Bootstrap(n, seed=seed)
    return _BOOTSTRAPS[key]


@dataclass
class MeasureCheck:
    """The known-answer check of one measure (docs/math.md 10.20).

    ``values``: the mean of each reference map with its interval. ``margins``: paired intervals
    of ``oracle - other`` for ``other`` in random, centre, inverted, signed so that a positive
    margin means the oracle scores **better** (for a lower-is-better measure the sign is
    flipped). The measure passes when every margin's interval lies above 0.
    """

    measure: str
    higher_is_better: bool
    values: dict[str, Interval]
    margins: dict[str, Interval]

    @property
    def passed(self) -> bool:
        """True when the oracle is better than each other reference, every interval above 0."""
        return all(m.low > 0.0 for m in self.margins.values())

    @property
    def weakest(self) -> Interval:
        """The margin with the smallest lower bound (what decides whether the check passes)."""
        return min(self.margins.values(), key=lambda m: m.low)

    def report(self, digits: int = 3) -> str:
        """A few lines: the reference means and the margins, with n and intervals, and the verdict."""
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        lines = [f"{self.measure} ({arrow}):"]
        lines.append("  " + ", ".join(f"{k} {v.format(digits, n=False)}" for k, v in self.values.items()))
        lines.append(
            "  oracle better than "
            + ", ".join(f"{k} by {m.format(digits, n=False)}" for k, m in self.margins.items())
            + f" (n={next(iter(self.margins.values())).n})"
        )
        lines.append(f"  -> {'PASSES' if self.passed else 'FAILS'} the known-answer check")
        return "\n".join(lines)


def check_measure(
    measure: str, per_image: Mapping[str, Tensor], higher_is_better: bool, seed: int = 0
) -> MeasureCheck:
    """Known-answer check of a measure from its per-image values on the reference maps.

    ``per_image`` maps ``"oracle"``, ``"random"``, ``"centre"`` and ``"inverted"`` to the values
    (n,) of the measure on the same n images, in the same order.
    """
    missing = [k for k in REFERENCES if k not in per_image]
    if missing:
        raise ValueError(f"per_image needs values for every reference map; missing {missing}.")
    n = int(per_image["oracle"].shape[0])
    boot = _bootstrap(n, seed)
    values = {k: boot.interval(per_image[k]) for k in REFERENCES}
    sign = 1.0 if higher_is_better else -1.0
    margins = {
        other: boot.difference(sign * per_image["oracle"].double(), sign * per_image[other].double())
        for other in ("random", "centre", "inverted")
    }
    return MeasureCheck(measure, higher_is_better, values, margins)


def _auc(
    model: nn.Module, x: Tensor, maps: Tensor, target: Tensor, substrate: Any, order: str,
    steps: int, batch_size: int, seed: int,
) -> Tensor:
    return metrics.deletion(
        model, x, maps, target=target, steps=steps, substrate=substrate, order=order,
        batch_size=batch_size, seed=seed,
    ).values


def substrate_check(
    model: nn.Module,
    x: Tensor,
    masks: Tensor,
    target: Tensor,
    substrates: Sequence[Any] = ("black", "grey", "blur", "mean", "road"),
    orders: Sequence[str] = ("morf", "lerf"),
    steps: int = 8,
    batch_size: int = 500,
    seed: int = 0,
) -> dict[tuple[str, str], MeasureCheck]:
    """The known-answer check of deletion for each substrate and order: ``{(substrate, order): check}``.

    Most relevant first (``"morf"``) is better when the AUC is low; least relevant first
    (``"lerf"``, which equals insertion with the same substrate) when it is high.
    """
    refs = reference_maps(masks, seed)
    model = fast_copy(model)
    out: dict[tuple[str, str], MeasureCheck] = {}
    for substrate in substrates:
        for order in orders:
            values = {
                k: _auc(model, x, m, target, substrate, order, steps, batch_size, seed) for k, m in refs.items()
            }
            name = f"deletion {order.upper()}, {substrate}"
            out[(str(substrate), order)] = check_measure(name, values, higher_is_better=(order == "lerf"), seed=seed)
    return out


# --------------------------------------------------------------------------- the evaluation


@dataclass
class Evaluation:
    """Per-image values of every measure for every row (reference map or method) on one model.

    ``values[measure][row]`` is a float64 tensor over the **first** ``n`` images of the set
    (``n`` depends on the row and measure: see ``Evaluation.n``), so two rows are compared on the
    images they share. ``seconds[row]`` is the wall time of one explanation per image,
    ``randomisation[row]`` the whole cascade (:class:`camlib.metrics.RandomizationResult`) for
    the methods asked for, ``examples[row]`` the maps of the first few images at image
    resolution (for figures).
    """

    model: str
    rows: list[str]
    values: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    randomisation: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, Tensor] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def n(self, measure: str, row: str) -> int:
        """Number of images behind ``values[measure][row]`` (0 if not measured)."""
        v = self.values.get(measure, {}).get(row)
        return 0 if v is None else int(v.shape[0])

    def has(self, measure: str, row: str) -> bool:
        return self.n(measure, row) > 0

    def interval(self, measure: str, row: str) -> Interval:
        """Mean of ``measure`` for ``row`` with its bootstrap interval and n."""
        v = self.values[measure][row]
        return _bootstrap(int(v.shape[0])).interval(v)

    def difference(self, measure: str, a: str, b: str) -> Interval:
        """Paired interval of ``mean(a - b)`` on the images both rows were measured on."""
        va, vb = self.values[measure][a], self.values[measure][b]
        n = min(va.shape[0], vb.shape[0])
        return _bootstrap(int(n)).difference(va[:n], vb[:n])

    def check(self, measure: str) -> MeasureCheck:
        """The known-answer check of ``measure`` on this model's reference rows."""
        refs = {k: self.values[measure][k] for k in REFERENCES}
        n = min(int(v.shape[0]) for v in refs.values())
        return check_measure(measure, {k: v[:n] for k, v in refs.items()}, MEASURES[measure][1])

    def methods(self) -> list[str]:
        return [r for r in self.rows if r not in REFERENCES]

    def format_table(self, measures: Sequence[str] | None = None, digits: int = 3) -> str:
        """A markdown table: one row per reference map and method, ``mean [low, high]`` and n."""
        measures = [m for m in (measures or MEASURES) if m in self.values]
        head = "| method | " + " | ".join(
            f"{MEASURES[m][0]} {'↑' if MEASURES[m][1] else '↓'}" for m in measures
        ) + " | ms/img |"
        lines = [head, "|" + "---|" * (len(measures) + 2)]
        for row in self.rows:
            cells = []
            for m in measures:
                if self.has(m, row):
                    iv = self.interval(m, row)
                    cells.append(f"{iv.format(digits, n=False)} ({iv.n})")
                else:
                    cells.append("–")
            ms = f"{1000 * self.seconds[row]:.2f}" if row in self.seconds else "–"
            lines.append(f"| {LABELS.get(row, row)} | " + " | ".join(cells) + f" | {ms} |")
        return "\n".join(lines)

    def format_differences(self, reference: str = "grad_cam", measures: Sequence[str] | None = None, digits: int = 3) -> str:
        """A markdown table of paired differences ``method - reference`` with intervals.

        A cell is starred when its interval excludes 0 at the printed precision (the two methods
        differ on that measure; a difference that rounds to 0 is float rounding, not a finding).
        """
        measures = [m for m in (measures or MEASURES) if m in self.values and self.has(m, reference)]
        lines = [
            f"| method - {LABELS.get(reference, reference)} | " + " | ".join(MEASURES[m][0] for m in measures) + " |",
            "|" + "---|" * (len(measures) + 1),
        ]
        for row in self.methods():
            if row == reference:
                continue
            cells = []
            for m in measures:
                if self.has(m, row):
                    d = self.difference(m, row, reference)
                    star = "*" if round(d.low, digits) > 0 or round(d.high, digits) < 0 else ""
                    cells.append(f"{d.mean:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}]{star} ({d.n})")
                else:
                    cells.append("–")
            lines.append(f"| {LABELS.get(row, row)} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def _explain_classes(
    method: str, model: nn.Module, x: Tensor, labels: Tensor, masks: Tensor | None, classes: int,
    layer: str, batch: int, n_classes: int,
) -> dict[str, Any]:
    """Explain the true class of every image, and every class of the first ``n_classes`` images.

    Returns ``"maps"`` (true-class maps at image size), ``"native"`` (true-class maps at the
    method's own resolution), ``"cosine"`` and ``"wrong_energy"`` (class discrimination on the
    first ``n_classes`` images) and ``"seconds"`` (wall time of one explanation per image).
    """
    size = tuple(x.shape[-2:])
    maps, native, cosine, wrong = [], [], [], []
    seconds, explained = 0.0, 0
    starts = list(range(0, n_classes, batch)) + list(range(n_classes, x.shape[0], batch))
    for start in starts:
        stop = min(start + batch, n_classes if start < n_classes else x.shape[0])
        xb, yb = x[start:stop], labels[start:stop]
        pick = torch.arange(len(yb))
        if start < n_classes:
            targets = [torch.full_like(yb, c) for c in range(classes)]
        else:
            targets = [yb]
        clock = time.perf_counter()
        results = [explain(method, model, xb, t, layer) for t in targets]
        seconds += time.perf_counter() - clock
        explained += len(yb) * len(targets)
        if start < n_classes:
            maps.append(torch.stack([metrics.to_map(r, size) for r in results], 1)[pick, yb])
            native.append(torch.stack([metrics.to_map(r) for r in results], 1)[pick, yb])
            disc = metrics.class_discrimination(results, None if masks is None else masks[start:stop], yb)
            cosine.append(disc.cosine.values)
            if masks is not None:
                wrong.append(disc.wrong_energy.values)
        else:
            maps.append(metrics.to_map(results[0], size))
            native.append(metrics.to_map(results[0]))
    return {
        "maps": torch.cat(maps),
        "native": torch.cat(native),
        "cosine": torch.cat(cosine) if cosine else None,
        "wrong_energy": torch.cat(wrong) if wrong else None,
        "seconds": seconds / max(explained, 1),
    }


def _top_layer(model: nn.Module, x: Tensor) -> str:
    """The output layer: the module with parameters whose output is the model's output.

    Found by running ``x`` once with forward hooks; if no such module returns the output itself,
    the last module with parameters that ran.
    """
    ran: list[tuple[str, Any]] = []
    hooks = [
        module.register_forward_hook(lambda mod, inp, out, _name=name: ran.append((_name, out)))
        for name, module in model.named_modules()
        if name and any(True for _ in module.parameters(recurse=False))
    ]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    for name, value in reversed(ran):
        if value is out:
            return name
    return ran[-1][0]


def evaluate(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    masks: Tensor | None,
    *,
    name: str = "model",
    methods: Sequence[str] | None = None,
    layer: str = "features",
    n: int = 1000,
    n_costly: int = 100,
    n_faithful: int = 500,
    n_classes: int | None = None,
    n_classes_costly: int = 50,
    n_sanity: int = 32,
    steps: int = 8,
    deletion_substrate: Any = DELETION_SUBSTRATE,
    insertion_substrate: Any = INSERTION_SUBSTRATE,
    tolerance: int | None = None,
    permuted: nn.Module | None = None,
    cascade: Sequence[str] = (),
    references: bool = True,
    batch_size: int = 250,
    curve_batch: int = 1000,
    examples: int = 4,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Explain the held-out images with every method once and score the maps with every measure.

    ``images`` (N, C, H, W), ``labels`` (N,) the true classes (every method explains the true
    label), ``masks`` (N, H, W) the object masks, or ``None`` (then localisation, wrong-class
    energy and the reference maps are skipped). Each method explains the first ``n`` images
    (``n_costly`` for :data:`COSTLY`); class discrimination explains every class of the first
    ``n_classes`` of those (default ``n_faithful``; ``n_classes_costly`` for the costly methods);
    faithfulness scores the first ``n_faithful``. The model-randomisation column re-initialises the output layer of a copy of
    the model (the first step of Adebayo et al.'s cascade) on the first ``n_sanity`` images; the
    methods in ``cascade`` also get the whole cascade (``Evaluation.randomisation``).
    ``permuted`` is the same architecture trained on permuted labels (data randomisation, on the
    first ``n_faithful`` images) or ``None``. ``tolerance`` is the pointing game's radius in pixels (default:
    :func:`camlib.metrics.scaled_tolerance`). The models are evaluated through
    :func:`fast_copy` (the caller's models are not touched). Deletion curves depend only on the ranking of the
    pixels, so a row whose ranking equals an earlier row's, pixel for pixel, reuses its curves
    (on a GAP-linear head CAM and XGrad-CAM rank like Grad-CAM). A method that does not apply to
    the model (CAM without a GAP-linear head) is left out and recorded in
    ``settings["not_applicable"]``. ``progress`` receives one line per finished row.
    """
    methods = available_methods() if methods is None else tuple(methods)
    model = fast_copy(model)
    permuted = None if permuted is None else fast_copy(permuted)
    x_all, y_all = images, labels.long()
    h, w = x_all.shape[-2:]
    n = min(n, x_all.shape[0])
    with torch.no_grad():
        classes = int(model(x_all[:1]).shape[1])
    tolerance = metrics.scaled_tolerance((h, w)) if tolerance is None else int(tolerance)
    refs_wanted = references and masks is not None
    ev = Evaluation(name, [*REFERENCES] if refs_wanted else [], settings={
        "n": n, "n_costly": n_costly, "n_faithful": n_faithful, "n_sanity": n_sanity, "steps": steps,
        "n_classes": n_faithful if n_classes is None else n_classes, "n_classes_costly": n_classes_costly,
        "deletion_substrate": deletion_substrate, "insertion_substrate": insertion_substrate,
        "tolerance": tolerance, "layer": layer, "classes": classes,
        "methods_missing": [m for m in METHODS if m not in methods], "not_applicable": {},
        "top_layer": _top_layer(model, x_all[:1]), "shared_curves": {},
    })
    for measure in MEASURES:
        ev.values[measure] = {}
    seen: list[tuple[str, Tensor]] = []  # (row, pixel ranks) of the rows whose curves were computed

    def put(measure: str, row: str, values: Tensor) -> None:
        ev.values[measure][row] = values.detach().double().cpu()

    def faithfulness(row: str, maps: Tensor, count: int) -> None:
        k = min(count, n_faithful)
        ranks = metrics._ranks(maps[:k], seed)
        for other, other_ranks in seen:
            if other_ranks.shape[0] >= k and torch.equal(other_ranks[:k], ranks):
                ev.settings["shared_curves"][row] = other
                for measure in ("deletion", "insertion"):
                    put(measure, row, ev.values[measure][other][:k])
                return
        xs, ts = x_all[:k], y_all[:k]
        put("deletion", row, _auc(model, xs, maps[:k], ts, deletion_substrate, "morf", steps, curve_batch, seed))
        put("insertion", row, _auc(model, xs, maps[:k], ts, insertion_substrate, "lerf", steps, curve_batch, seed))
        seen.append((row, ranks))

    def localisation(row: str, maps: Tensor, m: Tensor) -> None:
        put("pointing", row, metrics.pointing_game(maps, m, tolerance=tolerance).values)
        put("energy", row, metrics.energy_inside(maps, m).values)
        put("iou", row, metrics.iou(maps, m).values)

    if refs_wanted:
        for row, maps in reference_maps(masks[:n], seed).items():
            localisation(row, maps, masks[:n])
            faithfulness(row, maps, n)
            ev.examples[row] = maps[:examples]
            if progress:
                progress(f"{name}: {row} done")

    top = ev.settings["top_layer"]
    for method in methods:
        count = min(n_costly if method in COSTLY else n, n)
        x, y = x_all[:count], y_all[:count]
        m = None if masks is None else masks[:count]
        k_classes = min(count, n_faithful if n_classes is None else n_classes)
        if method in COSTLY:
            k_classes = min(k_classes, n_classes_costly)
        try:
            out = _explain_classes(method, model, x, y, m, classes, layer, batch_size, k_classes)
        except (ValueError, TypeError) as error:  # e.g. CAM on a head that is not GAP-linear
            ev.settings["not_applicable"][method] = str(error).split(". ")[0]
            if progress:
                progress(f"{name}: {method} does not apply ({ev.settings['not_applicable'][method]})")
            continue
        ev.rows.append(method)
        ev.seconds[method] = out["seconds"]
        ev.examples[method] = out["maps"][:examples]
        if m is not None:
            localisation(method, out["maps"], m)
            put("wrong_energy", method, out["wrong_energy"])
        put("cosine", method, out["cosine"])
        faithfulness(method, out["maps"], count)
        if permuted is not None:  # on the images of class discrimination and faithfulness
            k = min(count, n_faithful)
            other = torch.cat([
                metrics.to_map(explain(method, permuted, x[p], y[p], layer)) for p in _chunks(k, batch_size)
            ])
            put("data_randomisation", method, metrics.spearman(out["native"][:k], other))
        k = min(n_sanity, count)
        explainer = lambda mdl, xx, target=None, _method=method: explain(_method, mdl, xx, target, layer)  # noqa: E731
        layers = None if method in cascade else [top]
        rnd = metrics.randomization_test(explainer, model, x[:k], target=y[:k], layers=layers, seed=seed)
        if method in cascade:
            ev.randomisation[method] = rnd
        put("model_randomisation", method, rnd.spearman[1])
        if progress:
            progress(f"{name}: {method} done ({1000 * out['seconds']:.2f} ms per explanation, n={count})")
    return ev
