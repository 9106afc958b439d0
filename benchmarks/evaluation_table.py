"""Every camlib method against every camlib evaluation metric, as one markdown table.

    .venv/bin/python benchmarks/evaluation_table.py            # 200 held-out images (~minutes on 2 CPUs)
    .venv/bin/python benchmarks/evaluation_table.py --n 1000   # the whole held-out set
    .venv/bin/python benchmarks/evaluation_table.py --random-init --n 16   # dry run without weights

Setup: the course's GAP model (``camlib.models.load_model("gap")``), the first ``--n`` images of
``camlib.data.test_set()``, each method explaining the **true label** (the masks are those of the
labelled object), CAM-family maps taken at ``layer="features"`` (16 x 16) and upsampled
bilinearly to 64 x 64 by the metrics. Conventions (see each function's docstring):

* pointing game with ties shared (``ties="share"``), energy inside the mask, IoU of the map
  above 20 % of its maximum;
* deletion (substrate 0 = black) and insertion (substrate = Gaussian blur, k=11, sigma=5),
  ``--steps`` steps, softmax probability, AUC by the trapezoid rule;
* average drop (relative, %) and increase in confidence (%), softmax probability, image x map;
* XGrad-CAM conservation ``|S - sum raw|`` and sensitivity ``sum_k |S - S_{k->0} - w_k sum A^k|``
  on the logit (CAM family only); completeness ``|sum values - (F(x) - F(0))|`` on the logit
  (pixel methods only);
* cascading randomisation (first ``--rand-n`` images): mean Spearman rank correlation with the
  trained model's map after re-initialising the fc only, and after all layers.

The cost columns count the rows that go through the model during one method call, divided by
the batch size: forward passes per image, and backward passes per image (gradient rows that
flow back through the model output). The time column is wall time per image on this machine.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import torch

import camlib
from camlib import axioms, metrics

CAM_FAMILY = ("cam", "grad_cam", "grad_cam_plus", "grad_cam_pp", "xgrad_cam")
PIXEL = ("saliency", "integrated_gradients", "occlusion")


def method_table(ig_steps: int, occ_stride: int) -> dict[str, Callable[..., Any]]:
    """name -> f(model, x, target) returning a CamResult or an Attribution."""
    layer = "features"
    return {
        "cam": lambda m, x, target=None: camlib.cam(m, x, target=target),
        "grad_cam": lambda m, x, target=None: camlib.grad_cam(m, x, layer, target=target),
        "grad_cam_plus": lambda m, x, target=None: camlib.grad_cam_plus(m, x, layer, target=target),
        "grad_cam_pp": lambda m, x, target=None: camlib.grad_cam_pp(m, x, layer, target=target),
        "xgrad_cam": lambda m, x, target=None: camlib.xgrad_cam(m, x, layer, target=target),
        "saliency": lambda m, x, target=None: camlib.saliency(m, x, target=target),
        "integrated_gradients": lambda m, x, target=None: camlib.integrated_gradients(
            m, x, target=target, steps=ig_steps
        ),
        "occlusion": lambda m, x, target=None: camlib.occlusion(
            m, x, target=target, patch=8, stride=occ_stride
        ),
    }


class PassCounter:
    """Counts image rows going forward through ``model`` and gradient rows coming back."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.forward_rows = 0
        self.backward_rows = 0

    def _hook(self, _m: torch.nn.Module, _inp: Any, out: torch.Tensor) -> None:
        self.forward_rows += out.shape[0]
        if out.requires_grad:
            rows = out.shape[0]

            def count(grad: torch.Tensor) -> None:
                self.backward_rows += rows

            out.register_hook(count)

    def __enter__(self) -> "PassCounter":
        self.handle = self.model.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handle.remove()


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000 or (value != 0 and abs(value) < 10 ** (-digits)):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="held-out images to evaluate")
    parser.add_argument("--steps", type=int, default=16, help="deletion / insertion steps")
    parser.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients nodes")
    parser.add_argument("--rand-n", type=int, default=16, help="images for the randomisation test")
    parser.add_argument("--sens-n", type=int, default=50, help="images for the sensitivity violation")
    parser.add_argument("--occ-stride", type=int, default=4, help="occlusion stride (8x8 patch)")
    parser.add_argument("--batch", type=int, default=50, help="images per method call")
    parser.add_argument("--random-init", action="store_true", help="untrained model (dry run)")
    parser.add_argument("--weights-dir", default=None, help="weights folder (default: the bundled ones)")
    parser.add_argument("--methods", default=",".join(CAM_FAMILY + PIXEL))
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    if args.random_init:
        model = camlib.models.build_model("gap").eval()
    else:
        model = camlib.models.load_model("gap", weights_dir=args.weights_dir)
    data = camlib.data.test_set()[: args.n]
    x, labels, masks = data.images, data.labels, data.masks
    with torch.no_grad():
        acc = float((model(x).argmax(1) == labels).float().mean())
    methods = method_table(args.ig_steps, args.occ_stride)
    names = [m for m in args.methods.split(",") if m]

    rows = []
    for name in names:
        fn = methods[name]
        results, t0 = [], time.perf_counter()
        fwd = bwd = 0
        for i in range(0, len(x), args.batch):
            with PassCounter(model) as counter:
                results.append(fn(model, x[i : i + args.batch], target=labels[i : i + args.batch]))
            fwd += counter.forward_rows
            bwd += counter.backward_rows
        seconds = time.perf_counter() - t0
        parts = [metrics.to_map(r) for r in results]
        maps = torch.cat(parts)
        row: dict[str, Any] = {"method": name, "fwd": fwd / len(x), "bwd": bwd / len(x), "ms": 1000 * seconds / len(x)}
        row["pg"] = metrics.pointing_game(maps, masks).mean
        row["energy"] = metrics.energy_inside(maps, masks).mean
        row["iou"] = metrics.iou(maps, masks, threshold=0.2).mean
        row["del"] = metrics.deletion(model, x, maps, target=labels, steps=args.steps).mean
        row["ins"] = metrics.insertion(model, x, maps, target=labels, steps=args.steps).mean
        row["drop"] = metrics.average_drop(model, x, maps, target=labels).mean
        row["incr"] = metrics.increase_in_confidence(model, x, maps, target=labels).mean
        cons = sens = comp = None
        if name in CAM_FAMILY:
            cons_v, sens_v = [], []
            for i, r in enumerate(results):
                xb = x[i * args.batch : (i + 1) * args.batch]
                cons_v.append(axioms.conservation_violation(model, xb, r).values)
                left = args.sens_n - i * args.batch
                if left > 0:
                    sub = camlib.CamResult(
                        r.activations[:left], None, r.weights[:left], r.raw[:left], r.map[:left],
                        r.target[:left], r.score[:left], r.method,
                    )
                    sens_v.append(axioms.sensitivity_violation(model, xb[:left], "features", sub, batch_size=256).values)
            cons, sens = float(torch.cat(cons_v).mean()), float(torch.cat(sens_v).mean())
        else:
            comp = float(
                torch.cat(
                    [
                        axioms.completeness(model, x[i * args.batch : (i + 1) * args.batch], r).values
                        for i, r in enumerate(results)
                    ]
                ).mean()
            )
        row["cons"], row["sens"], row["comp"] = cons, sens, comp
        xr, tr = x[: args.rand_n], labels[: args.rand_n]
        rnd = metrics.randomization_test(lambda m, xx, target=None: fn(m, xx, target=target), model, xr, target=tr)
        row["rand_fc"] = float(rnd.mean[1])
        row["rand_all"] = float(rnd.mean[-1])
        row["rand_abs_all"] = float(rnd.mean_abs[-1])
        rows.append(row)
        print(f"# done {name} ({seconds:.1f} s for the method): {row}", flush=True)

    print()
    print(
        f"GAP model{' (RANDOM INIT, dry run)' if args.random_init else ''}, first {len(x)} held-out "
        f"images (accuracy {100 * acc:.1f} %), target = true label; deletion/insertion {args.steps} "
        f"steps; IG {args.ig_steps} trapezoid nodes from black; occlusion 8x8 patch, "
        f"stride {args.occ_stride}, black; sensitivity on {min(args.sens_n, len(x))} images; "
        f"randomisation on {min(args.rand_n, len(x))} images, layers {', '.join(rnd.steps[1:])}."
    )
    print()
    header = (
        "| method | pointing ↑ | energy ↑ | IoU@0.2 ↑ | deletion ↓ | insertion ↑ | avg drop % ↓ | incr. % ↑ "
        "| conservation ↓ | sensitivity ↓ | completeness ↓ | ρ rand fc | ρ rand all | abs ρ rand all "
        "| fwd/img | bwd/img | ms/img |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        print(
            f"| {r['method']} | {fmt(r['pg'])} | {fmt(r['energy'])} | {fmt(r['iou'])} | {fmt(r['del'])} "
            f"| {fmt(r['ins'])} | {fmt(r['drop'], 1)} | {fmt(r['incr'], 1)} | {fmt(r['cons'])} "
            f"| {fmt(r['sens'])} | {fmt(r['comp'])} | {fmt(r['rand_fc'], 2)} | {fmt(r['rand_all'], 2)} "
            f"| {fmt(r['rand_abs_all'], 2)} | {fmt(r['fwd'], 1)} | {fmt(r['bwd'], 1)} | {fmt(r['ms'], 2)} |"
        )


if __name__ == "__main__":
    main()
