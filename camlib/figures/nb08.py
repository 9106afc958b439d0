"""Key figure and measurements of notebook 08: which explanation should we believe?

:func:`measure` runs every method of the course on the held-out set with the public camlib API
and scores the maps with :mod:`camlib.metrics`:

* localisation: pointing game (``ties="share"``) and energy inside the object mask;
* faithfulness: deletion and insertion AUC (RISE; softmax probability, black / blurred substrate);
* the cascading model-randomisation sanity check (Adebayo et al., 2018): Spearman correlation of
  each map with the trained model's map once every layer has been re-initialised;
* the shortcut lesson: accuracy of the spurious-cue model with the cue matching the label,
  absent, and swapped, and where its Grad-CAM puts its energy (the cue or the shape).

Cheap methods (one forward and backward pass) are scored on ``N_CHEAP`` images; the expensive
ones (Integrated Gradients, occlusion) and the faithfulness curves on the first ``N_COSTLY``
of them, so that the whole measurement stays within the notebook's time budget.
:func:`key_figure` draws the table's main columns, the randomisation check and the shortcut.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = [
    "METHODS",
    "COSTLY",
    "N_CHEAP",
    "N_COSTLY",
    "CURVE_STEPS",
    "IG_STEPS",
    "N_RANDOMISED",
    "SAME_AS_GRAD_CAM",
    "OCCLUSION",
    "explain",
    "measure",
    "format_table",
    "key_figure",
]

#: methods compared, in table order; CAM-family methods explain the layer "features"
METHODS: tuple[str, ...] = (
    "cam",
    "grad_cam",
    "grad_cam_pp",
    "xgrad_cam",
    "saliency",
    "gradient_x_input",
    "integrated_gradients",
    "occlusion",
)
#: methods that cost many passes per image, scored on fewer images
COSTLY: tuple[str, ...] = ("integrated_gradients", "occlusion")
N_CHEAP: int = 48
N_COSTLY: int = 8
CURVE_STEPS: int = 8
IG_STEPS: int = 16
OCCLUSION: dict[str, int] = {"patch": 16, "stride": 12}
RANDOMISED: tuple[str, ...] = ("grad_cam", "saliency")
N_RANDOMISED: int = 4
SAME_AS_GRAD_CAM: tuple[str, ...] = ("cam", "xgrad_cam")


def explain(method: str, model: torch.nn.Module, x: torch.Tensor, target: Any = None) -> Any:
    """Run one course method with the notebook's settings; returns a CamResult or an Attribution."""
    import camlib

    if method == "cam":
        return camlib.cam(model, x, target=target)
    if method in ("grad_cam", "xgrad_cam"):
        return getattr(camlib, method)(model, x, layer="features", target=target)
    if method == "grad_cam_pp":
        return camlib.grad_cam_pp(model, x, layer="features", target=target)
    if method == "saliency":
        return camlib.saliency(model, x, target=target)
    if method == "gradient_x_input":
        return camlib.gradient_x_input(model, x, target=target)
    if method == "integrated_gradients":
        return camlib.integrated_gradients(model, x, target=target, steps=IG_STEPS, rule="trapezoid")
    if method == "occlusion":
        return camlib.occlusion(model, x, target=target, **OCCLUSION)
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def _for_masks(explanation: Any, method: str) -> Any:
    """Pixel attributions are compared by their absolute value summed over channels."""
    import camlib

    if method in ("gradient_x_input", "integrated_gradients"):
        return camlib.metrics.to_map(explanation).abs()
    return explanation


def measure(
    n_cheap: int = N_CHEAP, n_costly: int = N_COSTLY, curve_steps: int = CURVE_STEPS
) -> dict[str, Any]:
    """All measurements of notebook 08 (deterministic). Returns a dict:

    ``"rows"``: ``{method: {"n", "pointing", "energy", "deletion", "insertion", "seconds"}}`` with
    ``"random"`` (a uniformly random map, the chance level) as an extra row;
    ``"randomisation"``: ``{method: RandomizationResult}``;
    ``"spurious"``: accuracies and Grad-CAM energy on the cue / the shape, and example maps.
    """
    import camlib

    torch.manual_seed(0)
    model = camlib.models.load_model("gap")
    data = camlib.data.test_set(200)[:n_cheap]
    x, masks = data.images, data.masks
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    rows: dict[str, dict[str, float]] = {}
    explanations: dict[str, Any] = {}
    for method in METHODS:
        n = n_costly if method in COSTLY else n_cheap
        start = time.perf_counter()
        result = explain(method, model, x[:n], target[:n])
        seconds = (time.perf_counter() - start) / n
        explanations[method] = result
        scored = _for_masks(result, method)
        rows[method] = {
            "n": n,
            "pointing": camlib.metrics.pointing_game(scored, masks[:n]).mean,
            "energy": camlib.metrics.energy_inside(scored, masks[:n]).mean,
            "seconds": seconds,
        }
    gen = torch.Generator().manual_seed(7)
    random_maps = torch.rand(n_cheap, *masks.shape[1:], generator=gen)
    rows["random"] = {
        "n": n_cheap,
        "pointing": camlib.metrics.pointing_game(random_maps, masks).mean,
        "energy": camlib.metrics.energy_inside(random_maps, masks).mean,
        "seconds": 0.0,
    }
    explanations["random"] = random_maps
    # faithfulness on the first n_costly images, for every method (comparable across methods); all
    # methods' maps go through one deletion and one insertion call, so each step is one big batch
    # CAM and XGrad-CAM give Grad-CAM's map times a positive factor on this GAP-linear model
    # (notebooks 04 and 06): same pixel ranking, same curves. Reuse Grad-CAM's curves for them
    # after checking that the maps really are proportional.
    reference = camlib.normalize(explanations["grad_cam"].map[:n_costly], kind="max")
    copies = [
        m for m in SAME_AS_GRAD_CAM
        if torch.allclose(camlib.normalize(explanations[m].map[:n_costly], kind="max"), reference, atol=1e-5)
    ]
    names = [m for m in explanations if m not in copies]
    maps = []
    for method in names:
        result = explanations[method]
        scored = result if method == "random" else _for_masks(result, method)
        scored = scored if isinstance(scored, torch.Tensor) else camlib.metrics.to_map(scored)
        maps.append(camlib.metrics.to_map(scored[:n_costly], tuple(x.shape[-2:])))
    stacked_x = x[:n_costly].repeat(len(names), 1, 1, 1)
    stacked_t = target[:n_costly].repeat(len(names))
    stacked_maps = torch.cat(maps)
    kw = {"target": stacked_t, "steps": curve_steps, "batch_size": 256}
    deletion = camlib.metrics.deletion(model, stacked_x, stacked_maps, **kw)
    insertion = camlib.metrics.insertion(model, stacked_x, stacked_maps, **kw)
    for i, method in enumerate(names):
        part = slice(i * n_costly, (i + 1) * n_costly)
        rows[method]["deletion"] = float(deletion.values[part].mean())
        rows[method]["insertion"] = float(insertion.values[part].mean())
    for method in copies:
        rows[method]["deletion"] = rows["grad_cam"]["deletion"]
        rows[method]["insertion"] = rows["grad_cam"]["insertion"]
    curves = {
        "deletion": deletion.extras["curves"].view(len(names), n_costly, -1).mean(1),
        "insertion": insertion.extras["curves"].view(len(names), n_costly, -1).mean(1),
        "fractions": deletion.extras["fractions"],
        "methods": names,
    }
    xs, ts = x[:N_RANDOMISED], target[:N_RANDOMISED]
    # sanity check: cascading randomisation from the logits down
    randomisation = {}
    for method in RANDOMISED:
        kwargs = {"layer": "features"} if method == "grad_cam" else {}
        randomisation[method] = camlib.metrics.randomization_test(
            getattr(camlib, method), model, xs, target=ts, seed=0, **kwargs
        )
    # the shortcut: the spurious-cue model
    spurious = _spurious_lesson(n_cheap)
    return {"rows": rows, "randomisation": randomisation, "spurious": spurious, "target": target, "curves": curves, "copied_curves": copies}


def _spurious_lesson(n: int) -> dict[str, Any]:
    import camlib

    model = camlib.models.load_model("spurious")
    reference = camlib.models.load_model("gap")
    out: dict[str, Any] = {"accuracy": {}, "reference_accuracy": {}}
    for setting in ("train", "absent", "swapped"):
        data = camlib.data.test_set(200, spurious=setting)[:n]
        with torch.no_grad():
            out["accuracy"][setting] = float((model(data.images).argmax(1) == data.labels).float().mean())
            out["reference_accuracy"][setting] = float(
                (reference(data.images).argmax(1) == data.labels).float().mean()
            )
    data = camlib.data.test_set(200, spurious="train")[:n]
    cam_spurious = camlib.grad_cam(model, data.images, layer="features")
    cam_reference = camlib.grad_cam(reference, data.images, layer="features")
    out["energy_on_cue"] = camlib.metrics.energy_inside(cam_spurious, data.cue_masks).mean
    out["energy_on_shape"] = camlib.metrics.energy_inside(cam_spurious, data.masks).mean
    out["reference_energy_on_cue"] = camlib.metrics.energy_inside(cam_reference, data.cue_masks).mean
    out["reference_energy_on_shape"] = camlib.metrics.energy_inside(cam_reference, data.masks).mean
    out["cue_area"] = float(data.cue_masks.float().mean())
    out["shape_area"] = float(data.masks.float().mean())
    # energy per unit of area: 1 means "no more than a uniform map would put there"
    for prefix in ("", "reference_"):
        out[prefix + "cue_enrichment"] = out[prefix + "energy_on_cue"] / out["cue_area"]
        out[prefix + "shape_enrichment"] = out[prefix + "energy_on_shape"] / out["shape_area"]
    out["examples"] = {
        "images": data.images[:3],
        "spurious": cam_spurious.map[:3],
        "reference": cam_reference.map[:3],
    }
    return out


_LABELS = {
    "cam": "CAM",
    "grad_cam": "Grad-CAM",
    "grad_cam_pp": "Grad-CAM++",
    "xgrad_cam": "XGrad-CAM",
    "saliency": "saliency",
    "gradient_x_input": "grad x input",
    "integrated_gradients": "Int. Gradients",
    "occlusion": "occlusion",
    "random": "random map",
}


def format_table(results: dict[str, Any]) -> str:
    """The comparison table as fixed-width text (one row per method)."""
    rows, rnd = results["rows"], results["randomisation"]
    lines = [
        f"{'method':15s} {'n loc':>5s} {'pointing':>9s} {'energy':>7s} {'deletion':>9s} {'insertion':>10s}"
        f" {'rand. rho':>9s} {'ms/image':>9s}",
        "-" * 80,
    ]
    for method, row in rows.items():
        rho = f"{float(rnd[method].mean[-1]):9.2f}" if method in rnd else f"{'-':>9s}"
        lines.append(
            f"{_LABELS[method]:15s} {row['n']:5d} {row['pointing']:9.2f} {row['energy']:7.2f} "
            f"{row['deletion']:9.3f} {row['insertion']:10.3f} {rho} {1000 * row['seconds']:9.1f}"
        )
    return "\n".join(lines)


def key_figure(results: dict[str, Any] | None = None) -> Figure:
    """Three panels: localisation and faithfulness per method; the randomisation check; the shortcut."""
    import camlib

    results = measure() if results is None else results
    rows = results["rows"]
    methods = list(rows)
    fig = Figure(figsize=(12.0, 5.6), dpi=90)
    grid = fig.add_gridspec(2, 6, height_ratios=[1.0, 0.75])

    ax = fig.add_subplot(grid[0, :3])
    keys = [("pointing", "pointing game ↑"), ("energy", "energy in mask ↑"),
            ("deletion", "deletion AUC ↓"), ("insertion", "insertion AUC ↑")]
    width = 0.2
    pos = np.arange(len(methods))
    for i, (key, label) in enumerate(keys):
        ax.bar(pos + (i - 1.5) * width, [rows[m][key] for m in methods], width, label=label)
    ax.set_xticks(pos)
    ax.set_xticklabels([_LABELS[m] for m in methods], rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    ax.set_title("localisation and faithfulness (held-out shapes)", fontsize=10)

    ax = fig.add_subplot(grid[0, 3:])
    for method, res in results["randomisation"].items():
        ax.plot(range(len(res.steps)), res.mean.numpy(), marker="o", label=_LABELS[method])
    first = next(iter(results["randomisation"].values()))
    ax.set_xticks(range(len(first.steps)))
    ax.set_xticklabels(["trained"] + [f"+{s}" for s in first.steps[1:]], rotation=35, ha="right", fontsize=8)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylim(-0.3, 1.05)
    ax.set_ylabel("Spearman rho with trained map", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title("sanity check: randomise layers from the top", fontsize=10)

    sp = results["spurious"]
    ex = sp["examples"]
    for i in range(3):
        for j, (key, name) in enumerate((("reference", "gap model"), ("spurious", "spurious model"))):
            a = fig.add_subplot(grid[1, 2 * i + j])
            a.imshow(camlib.plotting.overlay(ex["images"][i], ex[key][i]))
            a.set_axis_off()
            a.set_title(f"{name}: Grad-CAM", fontsize=8)
    fig.text(
        0.5,
        0.01,
        f"spurious model accuracy: cue matches {100 * sp['accuracy']['train']:.0f} %, "
        f"cue absent {100 * sp['accuracy']['absent']:.0f} %, cue swapped {100 * sp['accuracy']['swapped']:.0f} %;"
        f"  Grad-CAM energy on the cue ({100 * sp['cue_area']:.1f} % of the pixels): {100 * sp['energy_on_cue']:.1f} % "
        f"(gap model {100 * sp['reference_energy_on_cue']:.1f} %)",
        ha="center",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
