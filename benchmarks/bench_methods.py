"""Speed ratios of camlib's methods on torchvision ResNet-18 (random weights), CPU.

    python benchmarks/bench_methods.py            # the issue's settings (a few minutes)
    python benchmarks/bench_methods.py --quick    # small images, to check the script runs

Prints three ratios, each measured in one run with the two sides interleaved (A B A B ...)
and the median of each side taken, so that load on a shared machine hits both alike:

1. Grad-CAM (layer4, batch 8, 224x224) time / one plain forward + backward of the same batch
   (``model(x)[range(N), target].sum().backward()``, parameter gradients included). Target <= 1.15.
2. Occlusion (16x16 patch, stride 8) with all windows batched (``batch_size=64``) versus one
   window per forward (``batch_size=1``): the speed-up. Target >= 4.
3. Integrated Gradients (64 steps) batched (``batch_size=64``) versus one path point per
   forward (``batch_size=1``): the speed-up.

Occlusion and IG cost (number of images) x (windows or steps) network passes; both sides
scale linearly with the number of images, so by default they run on ``--images 1`` image
(729 windows, 64 steps) to keep the run short; ``--slow-size`` shrinks their image further on
a loaded machine (say so when reporting). This is a script, not a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

import camlib


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(a, b, repeats: int) -> tuple[float, float]:
    """Median wall time of ``a`` and of ``b``, run alternately ``repeats`` times each."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64x64 images, to test the script")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="Grad-CAM batch size")
    parser.add_argument("--images", type=int, default=1, help="images for occlusion and IG")
    parser.add_argument("--slow-size", type=int, default=None,
                        help="image size for occlusion and IG (default: same as Grad-CAM)")
    parser.add_argument("--repeats", type=int, default=5, help="Grad-CAM repeats per side")
    parser.add_argument("--slow-repeats", type=int, default=1, help="occlusion / IG repeats")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = 64 if args.quick else 224
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(args.batch, 3, size, size)
    target = model(x).argmax(1).detach()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, resnet18(weights=None), "
          f"{size}x{size}")

    # 1. Grad-CAM overhead -------------------------------------------------------------
    def plain() -> None:
        model.zero_grad(set_to_none=True)
        out = model(x)
        out[torch.arange(x.shape[0]), target].sum().backward()

    def gradcam() -> None:
        camlib.grad_cam(model, x, "layer4", target=target)

    plain()
    gradcam()  # warm-up
    t_plain, t_cam = interleaved(plain, gradcam, args.repeats)
    model.zero_grad(set_to_none=True)
    print(f"[grad_cam]  batch {args.batch}: plain fwd+bwd {t_plain:.3f} s, grad_cam {t_cam:.3f} s, "
          f"ratio {t_cam / t_plain:.2f} (target <= 1.15)")

    # 2. Occlusion batched vs one window per forward ------------------------------------
    slow = args.slow_size or size
    xi = x[: args.images]
    if slow != size:
        xi = torch.nn.functional.interpolate(xi, size=(slow, slow), mode="bilinear", align_corners=False)
    ti = model(xi).argmax(1).detach()

    def occ(batch_size: int):
        return lambda: camlib.occlusion(model, xi, target=ti, patch=16, stride=8, batch_size=batch_size)

    windows = (((slow - 16) + 7) // 8 + 1) ** 2
    t_batched, t_single = interleaved(occ(64), occ(1), args.slow_repeats)
    print(f"[occlusion] {args.images} image(s) {slow}x{slow} x {windows} windows: batched(64) {t_batched:.2f} s, "
          f"one window per forward {t_single:.2f} s, speed-up {t_single / t_batched:.2f}x (target >= 4)")

    # 3. Integrated Gradients batched vs one step per forward ---------------------------
    def ig(batch_size: int):
        return lambda: camlib.integrated_gradients(model, xi, target=ti, steps=64, batch_size=batch_size)

    t_batched, t_single = interleaved(ig(64), ig(1), args.slow_repeats)
    print(f"[ig]        {args.images} image(s) {slow}x{slow} x 64 steps: batched(64) {t_batched:.2f} s, "
          f"one step per forward {t_single:.2f} s, speed-up {t_single / t_batched:.2f}x")


if __name__ == "__main__":
    main()
