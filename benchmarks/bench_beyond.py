"""Speed of camlib's Ablation-CAM, Score-CAM and SmoothGrad against pytorch-grad-cam and Captum.

    python benchmarks/bench_beyond.py                # the issue's settings: 224x224, batch 8 (long)
    python benchmarks/bench_beyond.py --size 112     # smaller images, for a loaded machine (say so)
    python benchmarks/bench_beyond.py --quick        # 64x64, batch 2: checks that the script runs

torchvision ``resnet18(weights=None)`` in eval mode, CPU, ``--threads`` threads (default 2), random
images, the predicted classes as targets. Three pairs, each side run ``--repeats`` times, the two
sides interleaved (A B A B ...) and the median of each taken, so that load on a shared machine hits
both alike:

1. Ablation-CAM at ``layer4``'s last block: ``camlib.ablation_cam(model, x, "layer4.1")`` against
   pytorch-grad-cam's ``AblationCAM(model, [model.layer4[-1]])`` (its default batch of 32).
   Ratio printed: peer time / camlib time (a speed-up; target >= 2).
2. Score-CAM at the same layer: ``camlib.score_cam(..., channel_softmax=True)`` (pytorch-grad-cam
   applies the channel softmax) against ``ScoreCAM`` (its default batch of 16). Speed-up, target >= 2.
3. SmoothGrad of the absolute gradient with the same number of samples: ``camlib.smooth_grad(model,
   x, camlib.saliency, samples=S)`` against Captum's ``NoiseTunnel(Saliency(model))`` with
   ``nt_samples=S`` and the same standard deviation, both ``--sg-batch`` noisy images per pass.
   Ratio printed: camlib time / Captum time (an overhead; target <= 1.1).

Beside the wall times, each line gives the CPU seconds of both sides and their ratio: on a machine
shared with other work (load average above the core count) wall time measures the scheduler as
much as the code, while CPU time (with ``--threads 1``, so that no thread spins waiting for another)
still measures the work done.

Each CAM pair also prints how far the two results are apart, as a check that both computed the
method: pytorch-grad-cam's final map (ReLU, min-max, resize) against camlib's raw map put through that
same post-processing (Score-CAM's differ by the masks' upsampling, ``align_corners``). SmoothGrad's
noise draws differ, so only the times are compared.

Where the speed comes from: Ablation-CAM needs K + 1 passes through the layers *after* the target
layer only; camlib runs the layers before it once per chunk of channels and grows the batch at the
layer, while pytorch-grad-cam repeats the input image and runs the whole network for every ablated
copy. Score-CAM cannot share work between its K masked inputs: both libraries run K full forward
passes per image, and camlib's gain is only in how it batches them (and in skipping constant
channels). This is a script, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import types
import warnings

import numpy as np
import torch
import torchvision

import camlib


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds of the last ``interleaved`` call: (camlib, peer), medians
CPU: list[float] = [0.0, 0.0]


def timed(fn) -> tuple[float, float, object]:
    start, cpu = time.perf_counter(), _cpu()
    out = fn()
    return time.perf_counter() - start, _cpu() - cpu, out


def interleaved(a, b, repeats: int) -> tuple[float, float, object, object]:
    """Median wall time of ``a`` and of ``b`` run alternately, and the last result of each; the
    median CPU times (this process, all its threads) go to ``CPU``."""
    ta, tb, ca, cb = [], [], [], []
    ra = rb = None
    for _ in range(repeats):
        t, c, ra = timed(a)
        ta.append(t)
        ca.append(c)
        t, c, rb = timed(b)
        tb.append(t)
        cb.append(c)
    CPU[:] = [statistics.median(ca), statistics.median(cb)]
    return statistics.median(ta), statistics.median(tb), ra, rb


def cpu_note(peer_over_camlib: bool = True) -> str:
    """The same ratio in CPU seconds, which a loaded machine disturbs less than wall time."""
    ours, theirs = CPU
    ratio = theirs / ours if peer_over_camlib else ours / theirs
    return f"   [CPU {ours:.1f} s vs {theirs:.1f} s: {ratio:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64x64 images, batch 2, to test the script")
    parser.add_argument("--size", type=int, default=224, help="image size (default 224)")
    parser.add_argument("--batch", type=int, default=8, help="images per call (default 8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="runs per side for each pair")
    parser.add_argument("--samples", type=int, default=10, help="SmoothGrad samples per image")
    parser.add_argument("--sg-batch", type=int, default=40, help="noisy images per pass for both SmoothGrads")
    parser.add_argument("--only", choices=("ablation", "score", "smoothgrad"), action="append",
                        help="run only these pairs (repeatable)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch = 64, 2

    import pytorch_grad_cam.ablation_cam
    import pytorch_grad_cam.score_cam
    from captum.attr import NoiseTunnel, Saliency
    from pytorch_grad_cam import AblationCAM, ScoreCAM

    for peer in (pytorch_grad_cam.ablation_cam, pytorch_grad_cam.score_cam):  # no progress bars
        peer.tqdm = types.SimpleNamespace(tqdm=lambda iterable, **_: iterable)
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    targets = [ClassifierOutputTarget(int(c)) for c in target]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, resnet18(weights=None), "
          f"batch {args.batch}, {args.size}x{args.size}, load average {os.getloadavg()[0]:.1f}")
    pairs = args.only or ["ablation", "score", "smoothgrad"]

    def peer_map(res) -> torch.Tensor:
        """camlib's raw map through pytorch-grad-cam's own post-processing (ReLU, min-max, resize)."""
        return torch.from_numpy(scale_cam_image(np.maximum(res.raw.numpy(), 0), (args.size, args.size)))

    if "ablation" in pairs:
        ours, theirs, res, peer = interleaved(
            lambda: camlib.ablation_cam(model, x, "layer4.1", target=target),
            lambda: AblationCAM(model, [model.layer4[-1]])(input_tensor=x, targets=targets),
            args.repeats,
        )
        gap = float((torch.from_numpy(peer) - peer_map(res)).abs().max())
        print(f"Ablation-CAM  camlib {ours:8.2f} s   pytorch-grad-cam {theirs:8.2f} s   speed-up {theirs / ours:6.1f}x"
              f"   (normalised maps differ by up to {gap:.1e}; camlib grew the batch at the layer: "
              f"{res.extras['expanded']})" + cpu_note())

    if "score" in pairs:
        ours, theirs, res, peer = interleaved(
            lambda: camlib.score_cam(model, x, "layer4.1", target=target, channel_softmax=True),
            lambda: ScoreCAM(model, [model.layer4[-1]])(input_tensor=x, targets=targets),
            args.repeats,
        )
        gap = float((torch.from_numpy(peer) - peer_map(res)).abs().max())
        print(f"Score-CAM     camlib {ours:8.2f} s   pytorch-grad-cam {theirs:8.2f} s   speed-up {theirs / ours:6.1f}x"
              f"   (normalised maps differ by up to {gap:.1e}: the masks' align_corners)" + cpu_note())

    if "smoothgrad" in pairs:
        level = 0.15
        span = float((x.flatten(1).amax(1) - x.flatten(1).amin(1)).mean())
        per_pass = max(1, args.sg_batch // args.batch)
        ours, theirs, _, _ = interleaved(
            lambda: camlib.smooth_grad(model, x, camlib.saliency, target=target, noise_level=level,
                                       samples=args.samples, batch_size=per_pass * args.batch),
            lambda: NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=args.samples,
                                                           nt_samples_batch_size=per_pass, stdevs=level * span,
                                                           target=target),
            args.repeats,
        )
        print(f"SmoothGrad    camlib {ours:8.2f} s   Captum NoiseTunnel {theirs:8.2f} s   ratio {ours / theirs:6.2f}"
              f"   ({args.samples} samples per image, {per_pass * args.batch} noisy images per pass)"
              + cpu_note(peer_over_camlib=False))


if __name__ == "__main__":
    main()
