"""Measurements and figures of notebook 08: which explanation should we believe?

Everything is measured with :mod:`camlib.evaluation` (each map computed once, every measure from
it, every mean with its n and a 95 % bootstrap interval):

* :func:`substrate_demo` / :func:`substrate_figure` -- one held-out object removed with each
  substrate, and what the model still believes;
* :func:`known_answer` / :func:`known_answer_figure` -- the known-answer check of deletion for
  each substrate and order (the object mask against a random map, the centre prior and the
  inverted mask), with the mean curves;
* :func:`measure` -- the notebook's whole measurement: the checks, the table of every method on
  the ``gap`` model but the two of :data:`LEFT_TO_BENCHMARK`, the ``fc`` model's CAM family, the cascade, the permuted-label model and
  the shortcut model, at the sizes of :data:`SIZES` (the notebook's time budget);
  ``benchmarks/evaluation_table.py`` runs the same code on the whole held-out set;
* :func:`key_figure` (the figure saved as ``figures/08_evaluating_explanations.png``),
  :func:`class_figure`, :func:`cascade_figure`, :func:`permuted_figure`, :func:`shortcut_figure`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = [
    "SIZES",
    "BATCH",
    "LEFT_TO_BENCHMARK",
    "CASCADE",
    "FC_METHODS",
    "CHECKED",
    "substrate_demo",
    "substrate_figure",
    "known_answer",
    "known_answer_figure",
    "measure",
    "spurious_lesson",
    "key_figure",
    "class_figure",
    "cascade_figure",
    "permuted_figure",
    "shortcut_figure",
    "format_checks",
]

#: Sizes of the notebook's measurement (first images of ``camlib.data.test_set()``). The benchmark
#: script uses 1000 / 500 / 100 / 32 instead.
SIZES: dict[str, int] = {
    "n": 300,  # localisation and data randomisation
    "n_faithful": 100,  # deletion, insertion and class discrimination
    "n_costly": 24,  # every measure of Integrated Gradients, occlusion and Ablation-CAM
    "n_classes_costly": 8,  # their class discrimination (every class explained)
    "n_sanity": 32,  # model randomisation
    "n_check": 32,  # the known-answer check of every substrate
    "steps": 8,  # deletion / insertion steps
}
#: Images per forward and backward pass. The course models' activations for 32 images of 64 x 64 pixels fit
#: in a CPU's cache; on 2 cores a batch of 32 costs about a quarter of the CPU time per image of a batch of 250
#: (the numbers are the same up to float rounding).
BATCH: int = 32
#: Methods the notebook leaves to ``benchmarks/evaluation_table.py`` (and the README's table): the two
#: costliest, whose every class and every image cost 16 masked or noisy passes per map; no number of
#: the notebook's text depends on them.
LEFT_TO_BENCHMARK: tuple[str, ...] = ("smooth_grad", "score_cam")
#: Methods whose whole randomisation cascade the notebook shows.
CASCADE: tuple[str, ...] = ("grad_cam", "grad_cam_pp", "saliency", "guided_backprop")
#: The CAM family on the ``fc`` model, whose head is not GAP-linear (there the methods differ).
FC_METHODS: tuple[str, ...] = ("grad_cam", "grad_cam_plus", "grad_cam_pp", "xgrad_cam")
#: (substrate, order) pairs of the notebook's known-answer check.
CHECKED: tuple[tuple[str, str], ...] = (
    ("black", "morf"), ("blur", "morf"), ("mean", "morf"), ("road", "morf"),
    ("black", "lerf"), ("blur", "lerf"), ("mean", "lerf"),
)

_SUBSTRATE_NAMES = {"black": "black", "grey": "grey", "blur": "blur", "mean": "mean colour", "road": "ROAD"}


# --------------------------------------------------------------------------- substrates


def substrate_demo(index: int | None = None) -> dict[str, Any]:
    """One held-out image with its object removed by each substrate, and the ``gap`` model's belief.

    ``index`` is an image of :func:`camlib.data.thread` (default: the square). Returns
    ``"images"`` {name: (3, H, W)}, ``"probability"`` {name: softmax probability of the true
    class}, ``"label"``, ``"mask"``.
    """
    import camlib
    from camlib import substrates

    thread = camlib.data.thread()
    i = camlib.data.THREAD["square"] if index is None else int(index)
    x, mask, label = thread.images[i : i + 1], thread.masks[i : i + 1], int(thread.labels[i])
    model = camlib.models.load_model("gap")
    images = {"original": x[0]}
    for name in ("black", "blur", "mean", "road"):
        images[name] = substrates.fill(x, mask, name)[0]
    with torch.no_grad():
        batch = torch.stack(list(images.values()))
        probability = model(batch).softmax(1)[:, label]
    return {
        "images": images,
        "probability": dict(zip(images, probability.tolist())),
        "label": camlib.data.CLASSES[label],
        "mask": mask[0],
    }


def substrate_figure(demo: dict[str, Any] | None = None) -> Figure:
    """The object of one image replaced by black, blur, the mean colour and ROAD's imputation."""
    from camlib.plotting import to_display

    demo = substrate_demo() if demo is None else demo
    fig = Figure(figsize=(11.0, 2.9), layout="constrained")
    axes = fig.subplots(1, len(demo["images"]))
    titles = {"original": "original", "black": "object -> black", "blur": "object -> blur",
              "mean": "object -> mean colour", "road": "object -> ROAD"}
    for ax, (name, image) in zip(axes, demo["images"].items()):
        ax.imshow(to_display(image))
        ax.contour(demo["mask"].float().numpy(), levels=[0.5], colors="white", linewidths=0.6, linestyles=":")
        ax.set_title(f"{titles[name]}\np({demo['label']}) = {demo['probability'][name]:.2f}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("What does the gap model still see once the object's pixels are removed?", fontsize=10)
    return fig


def known_answer(n: int = SIZES["n_check"], steps: int = SIZES["steps"], checked=CHECKED) -> dict[str, Any]:
    """The known-answer check of deletion for each (substrate, order) in ``checked`` on the ``gap`` model.

    Returns ``"checks"`` {(substrate, order): MeasureCheck} and ``"curves"`` {(substrate,
    order): {reference: mean curve (steps + 1,)}} and ``"fractions"``.
    """
    import camlib
    from camlib import evaluation, metrics

    with evaluation._one_thread():
        return _known_answer(n, steps, checked)


def _known_answer(n: int, steps: int, checked) -> dict[str, Any]:
    import camlib
    from camlib import evaluation, metrics

    model = evaluation.fast_copy(camlib.models.load_model("gap"))
    data = camlib.data.test_set()[:n]
    refs = evaluation.reference_maps(data.masks)
    checks, curves, fractions = {}, {}, None
    for substrate, order in checked:
        values, means = {}, {}
        for name, maps in refs.items():
            r = metrics.deletion(model, data.images, maps, target=data.labels, steps=steps, substrate=substrate,
                                 order=order, batch_size=1000)
            values[name], means[name] = r.values, r.extras["curves"].double().mean(0)
            fractions = r.extras["fractions"]
        label = f"{_SUBSTRATE_NAMES[substrate]}, {'most' if order == 'morf' else 'least'} relevant first"
        checks[(substrate, order)] = evaluation.check_measure(label, values, higher_is_better=(order == "lerf"))
        curves[(substrate, order)] = means
    return {"checks": checks, "curves": curves, "fractions": fractions, "n": n, "steps": steps}


def format_checks(checks: dict[tuple[str, str], Any]) -> str:
    """The known-answer checks as a text table: margins of the oracle with intervals, and the verdict."""
    lines = [f"{'substrate':12s} {'order':6s} {'oracle':>7s} {'random':>7s}   {'oracle better than random':26s} "
             f"{'than centre prior':26s} {'than inverted mask':26s} verdict"]
    for (substrate, order), c in checks.items():
        m = c.margins
        lines.append(
            f"{_SUBSTRATE_NAMES[substrate]:12s} {order.upper():6s} {c.values['oracle'].mean:7.3f} {c.values['random'].mean:7.3f}   "
            f"{m['random'].format(3, False):26s} {m['centre'].format(3, False):26s} {m['inverted'].format(3, False):26s} "
            f"{'passes' if c.passed else 'FAILS'}"
        )
    n = next(iter(checks.values())).margins["random"].n
    lines.append(f"(n = {n} held-out images; margins are paired 95 % bootstrap intervals, positive = the oracle is better)")
    return "\n".join(lines)


def known_answer_figure(result: dict[str, Any] | None = None, pairs=(("black", "morf"), ("mean", "morf"), ("blur", "lerf"))) -> Figure:
    """Mean deletion curves of the four reference maps, one panel per (substrate, order)."""
    from camlib.evaluation import LABELS

    result = known_answer() if result is None else result
    fig = Figure(figsize=(11.0, 3.2), layout="constrained")
    axes = fig.subplots(1, len(pairs), sharey=True)
    colours = {"oracle": "#1b9e77", "inverted": "#d95f02", "random": "#7570b3", "centre": "#666666"}
    x = result["fractions"].numpy()
    for ax, key in zip(axes, pairs):
        check = result["checks"][key]
        for name, curve in result["curves"][key].items():
            auc = check.values[name]
            ax.plot(x, curve.numpy(), marker="o", ms=3, color=colours[name], label=f"{LABELS[name]} ({auc.mean:.2f})")
        substrate, order = key
        verdict = "passes" if check.passed else "FAILS"
        ax.set_title(f"{_SUBSTRATE_NAMES[substrate]}, {'most' if order == 'morf' else 'least'} relevant first: {verdict}",
                     fontsize=9)
        ax.set_xlabel("fraction of pixels removed", fontsize=8)
        ax.legend(fontsize=7, title="map (AUC)", title_fontsize=7)
    axes[0].set_ylabel("probability of the true class", fontsize=8)
    fig.suptitle(f"Known answer first: the object mask must beat the other maps (mean of n = {result['n']} images)",
                 fontsize=10)
    return fig


# --------------------------------------------------------------------------- the measurement


def spurious_lesson(n: int = 300) -> dict[str, Any]:
    """The shortcut model: accuracy with the cue matching, absent and swapped; Grad-CAM's energy on the cue.

    Energies come with their intervals (first ``n`` held-out images, cue matching the label).
    """
    import camlib
    from camlib.evaluation import fast_copy
    from camlib.statistics import mean_interval, paired_difference

    model = fast_copy(camlib.models.load_model("spurious"))
    reference = fast_copy(camlib.models.load_model("gap"))

    def correct(net: torch.nn.Module, data: Any) -> torch.Tensor:
        with torch.no_grad():
            predicted = torch.cat([net(b).argmax(1) for b in data.images.split(BATCH)])
        return (predicted == data.labels).double()

    def grad_cam(net: torch.nn.Module, data: Any) -> torch.Tensor:  # Grad-CAM's maps (N, h, w), in batches
        pairs = zip(data.images.split(BATCH), data.labels.split(BATCH))
        return torch.cat([camlib.grad_cam(net, x, "features", target=y).map for x, y in pairs])

    out: dict[str, Any] = {"accuracy": {}, "reference_accuracy": {}, "n": n}
    for setting in ("train", "absent", "swapped"):
        data = camlib.data.test_set(spurious=setting)[:n]
        out["accuracy"][setting] = mean_interval(correct(model, data))
        out["reference_accuracy"][setting] = mean_interval(correct(reference, data))
    data = camlib.data.test_set(spurious="train")[:n]
    cam_spurious = grad_cam(model, data)
    cam_reference = grad_cam(reference, data)
    cue = camlib.metrics.energy_inside(cam_spurious, data.cue_masks).values.double()
    cue_ref = camlib.metrics.energy_inside(cam_reference, data.cue_masks).values.double()
    out["energy_on_cue"] = mean_interval(cue)
    out["reference_energy_on_cue"] = mean_interval(cue_ref)
    out["cue_difference"] = paired_difference(cue, cue_ref)
    out["energy_on_shape"] = mean_interval(camlib.metrics.energy_inside(cam_spurious, data.masks).values.double())
    out["reference_energy_on_shape"] = mean_interval(camlib.metrics.energy_inside(cam_reference, data.masks).values.double())
    out["cue_area"] = float(data.cue_masks.float().mean())
    out["shape_area"] = float(data.masks.float().mean())
    out["examples"] = {"images": data.images[:3], "masks": data.cue_masks[:3],
                       "spurious": cam_spurious[:3], "reference": cam_reference[:3]}
    return out


def measure(sizes: dict[str, int] | None = None, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything notebook 08 shows (deterministic): checks, tables, cascade, permuted labels, shortcut.

    ``known``: a :func:`known_answer` already computed with the same sizes (the notebook shows it
    first), reused instead of computed again.

    Returns ``"known_answer"`` (:func:`known_answer`), ``"gap"`` and ``"fc"``
    (:class:`camlib.evaluation.Evaluation`; the ``gap`` one with the permuted-label comparison and
    the cascades of :data:`CASCADE`), ``"spurious"`` (:func:`spurious_lesson`) and ``"sizes"``.
    """
    import camlib
    from camlib import evaluation

    with evaluation._one_thread():
        return _measure(dict(SIZES, **(sizes or {})), known)


def _measure(s: dict[str, int], known: dict[str, Any] | None) -> dict[str, Any]:
    import camlib
    from camlib import evaluation

    torch.manual_seed(0)
    data = camlib.data.test_set()
    common = {"n": s["n"], "n_faithful": s["n_faithful"], "n_costly": s["n_costly"], "n_sanity": s["n_sanity"],
              "n_classes_costly": s["n_classes_costly"], "steps": s["steps"], "batch_size": BATCH, "curve_batch": BATCH}
    methods = [m for m in evaluation.available_methods() if m not in LEFT_TO_BENCHMARK]
    permuted = camlib.models.load_model("permuted") if "permuted" in camlib.models.MODEL_NAMES else None
    gap = evaluation.evaluate(camlib.models.load_model("gap"), data.images, data.labels, data.masks, name="gap",
                              methods=methods, permuted=permuted, cascade=CASCADE, **common)
    fc_methods = [m for m in FC_METHODS if m in evaluation.available_methods()]
    fc = evaluation.evaluate(camlib.models.load_model("fc"), data.images, data.labels, data.masks, name="fc",
                             methods=fc_methods, references=False, **common)
    return {
        "known_answer": known_answer(s["n_check"], s["steps"]) if known is None else known,
        "gap": gap,
        "fc": fc,
        "spurious": spurious_lesson(s["n"]),
        "sizes": s,
    }


# --------------------------------------------------------------------------- figures


def _dots(ax: Any, ev: Any, measure: str, rows: list[str], colour: str = "#1f4e79") -> None:
    """Means with 95 % intervals, one line per row of ``rows`` (the same lines in every panel)."""
    y = np.arange(len(rows))[::-1]
    for yi, row in zip(y, rows):
        if not ev.has(measure, row):
            continue
        iv = ev.interval(measure, row)
        shade = "#999999" if row in ("oracle", "inverted", "random", "centre") else colour
        ax.plot([iv.low, iv.high], [yi, yi], color=shade, lw=2)
        ax.plot([iv.mean], [yi], "o", color=shade, ms=4)
    ax.set_yticks(y)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="x", color="#dddddd", lw=0.6)


def key_figure(results: dict[str, Any] | None = None) -> Figure:
    """Four panels on the ``gap`` model: deletion, energy, wrong-class energy, output-layer randomisation."""
    from camlib.evaluation import LABELS

    results = measure() if results is None else results
    ev = results["gap"]
    rows = list(ev.rows)
    fig = Figure(figsize=(12.5, 6.4), layout="constrained")
    axes = fig.subplots(1, 4, sharey=True)
    panels = [
        ("deletion", "deletion AUC, mean-colour fill\n(lower is better)"),
        ("energy", "energy inside the object\n(higher is better)"),
        ("wrong_energy", "energy on the object of the map\nfor a wrong class (lower is better)"),
        ("model_randomisation", "rho with the map after the output\nlayer is re-initialised (lower passes)"),
    ]
    for ax, (measure_name, title) in zip(axes, panels):
        _dots(ax, ev, measure_name, rows)
        ax.set_title(title, fontsize=8.5)
        if measure_name in ("energy", "deletion"):
            ax.axvline(ev.interval(measure_name, "random").mean, color="#7570b3", lw=0.8, ls="--")
    labels = []
    for row in rows:
        n = max(ev.n(m, row) for m in ("deletion", "energy", "wrong_energy"))
        labels.append(f"{LABELS[row]} (n<={n})")
    axes[0].set_yticklabels(labels, fontsize=7)
    fig.suptitle(
        "The methods on the gap model (SmoothGrad and Score-CAM: benchmarks/evaluation_table.py): mean and 95 % bootstrap interval; grey rows are the maps with a known answer, "
        "the dashed line is the random map",
        fontsize=9,
    )
    return fig


def class_figure() -> Figure:
    """Grad-CAM and Grad-CAM++ for the class triangle and the class cross, on two thread images.

    Top row: the two-object image (a triangle, its label, and a cross); bottom row: the thread's
    triangle alone. Each map is divided by its maximum and all share one colour scale.
    """
    import camlib
    from camlib.plotting import compare_maps

    thread = camlib.data.thread()
    model = camlib.models.load_model("gap")
    maps, titles, images = [], [], []
    for role in ("distractor", "triangle"):
        i = camlib.data.THREAD[role]
        x = thread.images[i : i + 1]
        for method in ("grad_cam", "grad_cam_pp"):
            for c in (camlib.data.CLASSES.index("triangle"), camlib.data.CLASSES.index("cross")):
                res = getattr(camlib, method)(model, x, "features", target=c)
                peak = float(res.map.max()) or 1.0
                maps.append((res.map[0] / peak).numpy())
                titles.append(f"{'Grad-CAM' if method == 'grad_cam' else 'Grad-CAM++'} for '{camlib.data.CLASSES[c]}'")
                images.append(x[0])
    return compare_maps(maps, titles, images=torch.stack(images), label="map / its maximum", ncols=4, size=2.3,
                        suptitle="Does the map change with the class it explains? (top: a triangle and a cross; "
                                 "bottom: a triangle alone)")


def cascade_figure(ev: Any, image: int = 0) -> Figure:
    """Cascading randomisation: mean Spearman per step with intervals, and one image's randomised maps."""
    import camlib
    from camlib.evaluation import LABELS
    from camlib.plotting import draw_map
    from camlib.statistics import Bootstrap

    methods = [m for m in CASCADE if m in ev.randomisation]
    first = ev.randomisation[methods[0]]
    steps = first.steps
    fig = Figure(figsize=(12.5, 2.0 + 1.55 * len(methods)), layout="constrained")
    grid = fig.add_gridspec(len(methods), len(steps) + 3)
    ax = fig.add_subplot(grid[:, :3])
    boot = Bootstrap(int(first.spearman.shape[1]))
    for method in methods:
        r = ev.randomisation[method]
        ivs = boot.intervals(r.spearman.T)
        mean = [iv.mean for iv in ivs]
        ax.plot(range(len(steps)), mean, marker="o", label=LABELS[method])
        ax.fill_between(range(len(steps)), [iv.low for iv in ivs], [iv.high for iv in ivs], alpha=0.2)
    ax.set_xticks(range(len(steps)))
    ax.set_xticklabels(["trained"] + [f"+{s}" for s in steps[1:]], rotation=40, ha="right", fontsize=7)
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_ylabel("Spearman rho with the trained map", fontsize=8)
    ax.set_title(f"randomise layers from the top (n = {first.spearman.shape[1]}, 95 % intervals)", fontsize=8.5)
    ax.legend(fontsize=7)
    image_tensor = camlib.data.test_set().images[image]
    for row, method in enumerate(methods):
        r = ev.randomisation[method]
        for col, (step, maps) in enumerate(zip(steps, r.maps)):
            a = fig.add_subplot(grid[row, 3 + col])
            m = maps[image].double()
            m = m.abs() / (m.abs().max() if float(m.abs().max()) > 0 else 1.0)
            artist = draw_map(a, m.numpy(), image=image_tensor, vmin=0.0, vmax=1.0, cmap="inferno",
                              title=("trained" if step == "none" else f"+{step}") if row == 0 else None)
            if col == 0:
                a.text(-0.08, 0.5, LABELS[method], transform=a.transAxes, rotation=90, ha="right", va="center", fontsize=8)
    fig.colorbar(artist, ax=fig.axes[1:], shrink=0.6, label="|map| / its maximum (one scale)")
    return fig


def permuted_figure(images: int = 3) -> Figure:
    """Maps of the ``gap`` model and of the same network trained on permuted labels, same images."""
    import camlib
    from camlib.evaluation import LABELS, explain
    from camlib.plotting import compare_maps

    data = camlib.data.test_set()[:images]
    models = {"trained": camlib.models.load_model("gap"), "permuted labels": camlib.models.load_model("permuted")}
    maps, titles, under = [], [], []
    for method in ("grad_cam", "guided_backprop"):
        for who, model in models.items():
            for i in range(images):
                m = camlib.metrics.to_map(explain(method, model, data.images[i : i + 1], data.labels[i : i + 1], "features"), (64, 64))[0]
                maps.append((m.abs() / (m.abs().max() if float(m.abs().max()) > 0 else 1.0)).numpy())
                titles.append(f"{LABELS[method]}\n{who}")
                under.append(data.images[i])
    return compare_maps(maps, titles, images=torch.stack(under), label="|map| / its maximum", ncols=images * 2, size=1.9,
                        suptitle="Data randomisation: the same architecture trained on the true and on permuted labels")


def shortcut_figure(lesson: dict[str, Any]) -> Figure:
    """Grad-CAM of the ``gap`` and the spurious model on three images whose corner mark matches the label."""
    from camlib.plotting import compare_maps

    ex = lesson["examples"]
    maps, titles, images, masks = [], [], [], []
    for i in range(3):
        for key, name in (("reference", "gap model"), ("spurious", "spurious model")):
            m = ex[key][i]
            maps.append((m / (m.max() if float(m.max()) > 0 else 1.0)).numpy())
            titles.append(f"{name}: Grad-CAM")
            images.append(ex["images"][i])
            masks.append(ex["masks"][i])
    return compare_maps(maps, titles, images=torch.stack(images), masks=torch.stack(masks).float(),
                        label="map / its maximum", ncols=6, size=1.9,
                        suptitle="The corner mark (outlined) and where each model's Grad-CAM puts its energy")
