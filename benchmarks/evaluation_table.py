"""The full evaluation table: every method, every model, the held-out set, each mean with n and a 95 % interval.

    .venv/bin/python benchmarks/evaluation_table.py             # the whole table, then its time
    .venv/bin/python benchmarks/evaluation_table.py --quick     # a small dry run (a minute)
    .venv/bin/python benchmarks/evaluation_table.py --models gap --n 200 --json table.json

What it runs (camlib.evaluation; conventions in its docstring and in notebook 08):

1. the known-answer check of deletion for every substrate (black, grey, blur, per-image mean
   colour, ROAD's noisy linear imputation) and both orders (most / least relevant first) on the
   ``gap`` model: the object mask must beat a random map, the centre prior and the inverted mask,
   each paired interval above 0. This is how the default substrates were chosen;
2. for each model (the ``gap`` and ``fc`` shape classifiers, the spurious-cue model, and MTCNN's
   O-Net on the LFW faces when camlib has it): the known-answer check of every measure (not for
   O-Net, which has no object masks), the table (every method camlib has, every measure, mean
   [95 % interval] (n)), and the paired differences of every method against Grad-CAM (a star
   marks an interval that excludes 0);
3. the sanity checks: Spearman correlation with the trained map once the output layer is
   re-initialised (first step of the cascade, ``--n-sanity`` images) and, on the ``gap`` model,
   with the map of the same architecture trained on permuted labels (``permuted``).

Sizes: localisation on the first ``--n`` held-out images, class discrimination and faithfulness
on the first ``--n-faithful`` (500 each by default: the issue's floor for methods that cost a few
passes per image; ``--n 1000`` takes the whole held-out set), the costly methods (Integrated
Gradients, SmoothGrad, occlusion, Ablation-CAM, Score-CAM) on the first ``--n-costly`` (100, the
floor for Integrated Gradients and occlusion), their class discrimination on ``--n-classes-costly``
(every class explained: four times the cost). Each number is printed with its n. The time
is printed at the end, as wall-clock and as CPU seconds (on a machine shared with other work the
CPU time divided by the number of threads is what an idle machine's wall clock would show).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import torch

import camlib
from camlib import evaluation
from camlib.evaluation import LABELS, MEASURES


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _models(names: list[str]) -> list[dict[str, Any]]:
    """Model, images, labels, masks and layer of each requested model that camlib has."""
    out = []
    shapes = camlib.data.test_set()
    for name in names:
        if name in ("gap", "fc", "permuted"):
            out.append({"name": name, "images": shapes.images, "labels": shapes.labels, "masks": shapes.masks,
                        "layer": "features"})
        elif name == "spurious":
            cued = camlib.data.test_set(spurious="train")
            out.append({"name": name, "images": cued.images, "labels": cued.labels, "masks": cued.masks,
                        "layer": "features", "cue_masks": cued.cue_masks})
        elif name == "onet":
            if "onet" not in getattr(camlib.models, "ALL_MODELS", ()) or not hasattr(camlib, "faces"):
                print("# O-Net is not in this camlib: skipped")
                continue
            faces = camlib.faces.lfw_subset()
            keep = faces.labels == 1  # explain the face output on the face crops
            out.append({"name": name, "images": faces.images[keep], "labels": faces.labels[keep], "masks": None,
                        "layer": "prelu4"})
        else:
            raise SystemExit(f"unknown model {name!r}")
    return out


def _summary(ev: evaluation.Evaluation) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for row in ev.rows:
        table[row] = {}
        for measure in MEASURES:
            if ev.has(measure, row):
                iv = ev.interval(measure, row)
                table[row][measure] = {"mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gap,fc,spurious,onet")
    parser.add_argument("--n", type=int, default=500, help="held-out images for localisation (1000: the whole set)")
    parser.add_argument("--n-faithful", type=int, default=500, help="images for faithfulness and class discrimination")
    parser.add_argument("--n-costly", type=int, default=100, help="images for the costly methods")
    parser.add_argument("--n-classes-costly", type=int, default=50, help="images for the costly methods' class discrimination")
    parser.add_argument("--n-sanity", type=int, default=32, help="images for the model-randomisation check")
    parser.add_argument("--steps", type=int, default=4, help="deletion / insertion steps")
    parser.add_argument("--substrate-n", type=int, default=100, help="images for the substrate check (0: skip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32,
                        help="images per explanation call and per curve batch (the course models' activations "
                             "then stay in the CPU cache: about a quarter of the CPU time per image of 250)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a dry run")
    parser.add_argument("--json", default=None, help="also write the means and intervals to this file")
    parser.add_argument("--verbose", action="store_true", help="print each row's CPU time as it finishes")
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_faithful, args.n_costly, args.n_sanity, args.substrate_n = 64, 64, 16, 16, 32
        args.n_classes_costly = 16

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    methods = evaluation.available_methods()
    missing = [m for m in evaluation.METHODS if m not in methods]
    print(f"# camlib {camlib.__version__}, torch {torch.__version__}, {args.threads} threads")
    print(f"# methods: {', '.join(methods)}" + (f"; not in this camlib yet: {', '.join(missing)}" if missing else ""))
    report: dict[str, Any] = {"settings": vars(args), "models": {}}

    if args.substrate_n:
        model = camlib.models.load_model("gap")
        data = camlib.data.test_set()[: args.substrate_n]
        t0 = time.perf_counter()
        checks = evaluation.substrate_check(model, data.images, data.masks, data.labels, steps=args.steps,
                                            batch_size=args.batch)
        print(f"\n## Known-answer check of deletion, every substrate and order (gap model, n={args.substrate_n}, "
              f"{args.steps} steps, {time.perf_counter() - t0:.0f} s)\n")
        print("| substrate | order | oracle | random | centre | inverted | oracle better than random | "
              "than centre | than inverted | passes |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for (substrate, order), check in checks.items():
            v, mg = check.values, check.margins
            print(f"| {substrate} | {order.upper()} | {v['oracle'].format(3, False)} | {v['random'].format(3, False)} "
                  f"| {v['centre'].format(3, False)} | {v['inverted'].format(3, False)} "
                  f"| {mg['random'].format(3, False)} | {mg['centre'].format(3, False)} "
                  f"| {mg['inverted'].format(3, False)} | {'yes' if check.passed else 'NO'} |")
        report["substrates"] = {f"{s}/{o}": c.passed for (s, o), c in checks.items()}

    last = [_cpu_seconds()]

    def progress(line: str) -> None:
        now = _cpu_seconds()
        if args.verbose:
            print(f"#   {line} [{now - last[0]:.1f} s CPU]", flush=True)
        last[0] = now

    permuted = None
    if "permuted" in camlib.models.MODEL_NAMES:
        try:
            permuted = camlib.models.load_model("permuted")
        except Exception as error:  # weights not bundled in this checkout
            print(f"# data randomisation skipped: {error}")
    for spec in _models([m for m in args.models.split(",") if m]):
        name = spec["name"]
        model = camlib.models.load_model(name)
        t0, c0 = time.perf_counter(), _cpu_seconds()
        ev = evaluation.evaluate(
            model, spec["images"], spec["labels"], spec["masks"], name=name, methods=methods, layer=spec["layer"],
            n=args.n, n_costly=args.n_costly, n_faithful=args.n_faithful, n_sanity=args.n_sanity, steps=args.steps,
            permuted=permuted if name == "gap" else None, n_classes_costly=args.n_classes_costly, progress=progress,
            batch_size=args.batch, curve_batch=args.batch,
        )
        elapsed, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        with torch.no_grad():
            accuracy = float((model(spec["images"][: args.n]).argmax(1) == spec["labels"][: args.n]).float().mean())
        print(f"\n## Model `{name}` (accuracy {100 * accuracy:.1f} % on the first {min(args.n, len(spec['labels']))} "
              f"images; {elapsed:.0f} s wall, {cpu:.0f} s CPU)\n")
        s = ev.settings
        print(f"Target = true label; layer `{s['layer']}`; pointing game tolerance {s['tolerance']} px (Zhang et al.'s "
              f"15 px scaled to the image); deletion: most relevant first, substrate `{s['deletion_substrate']}`; "
              f"insertion (= least relevant first), substrate `{s['insertion_substrate']}`; {s['steps']} steps, softmax "
              f"probability; model randomisation: output layer `{s['top_layer']}` re-initialised.")
        if s["shared_curves"]:
            print("Same pixel ranking, curves computed once: " + ", ".join(
                f"{LABELS[a]} = {LABELS[b]}" for a, b in s["shared_curves"].items()))
        if s["not_applicable"]:
            print("Not applicable: " + "; ".join(f"{LABELS[k]} ({v})" for k, v in s["not_applicable"].items()))
        if spec["masks"] is not None:
            print("\nKnown-answer checks (a measure that fails is reported, not used for verdicts):\n")
            for measure in ("pointing", "energy", "iou", "deletion", "insertion"):
                print(ev.check(measure).report())
        print()
        print(ev.format_table())
        print(f"\nPaired differences against Grad-CAM (`{name}`; * = the interval excludes 0):\n")
        print(ev.format_differences("grad_cam"))
        if "cue_masks" in spec:
            cam = camlib.grad_cam(model, spec["images"][: args.n], spec["layer"], target=spec["labels"][: args.n])
            on_cue = camlib.metrics.energy_inside(cam, spec["cue_masks"][: args.n]).values
            area = spec["cue_masks"][: args.n].flatten(1).double().mean(1)
            iv = camlib.statistics.mean_interval(on_cue)
            print(f"\nShortcut: Grad-CAM of the spurious model puts {iv.format(3)} of its energy on the corner cue, "
                  f"which covers {100 * float(area.mean()):.1f} % of the pixels.")
        report["models"][name] = _summary(ev)

    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    print(f"\n# total time: {wall:.0f} s wall-clock, {cpu:.0f} s CPU ({cpu / args.threads:.0f} s per thread); "
          f"budget: 300 s on 2 idle cores")
    report["seconds"] = {"wall": wall, "cpu": cpu}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
