"""Bad input gets camlib's own error, naming the fix: one test id per case.

Each case is ``(id, call, error type, message pattern)``; ``call(model, x)`` gets a float64
mean-GAP net (``features`` -> GAP -> ``fc``, 4 classes) and a batch of two 8x8 RGB images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import camlib
from camlib import axioms, metrics, weight_rules
from tiny_nets import deep_head_net


class MapModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.features(x)  # (N, C, H, W), not (N, classes)


class VGGLike(nn.Module):
    """VGG's layout: features -> AdaptiveAvgPool2d((7, 7)) -> flatten -> linear classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 49, 3))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def _nan(x):
    y = x.clone()
    y[0, 0, 0, 0] = float("nan")
    return y


def _inf(x):
    y = x.clone()
    y[1, 2, 3, 4] = -float("inf")
    return y


CASES = [
    # layers
    ("layer-typo", lambda m, x: camlib.grad_cam(m, x, "feature"), ValueError, r"not a submodule.*features"),
    ("layer-close-name", lambda m, x: camlib.grad_cam(m, x, "features.22"), ValueError, r"features\.2"),
    ("layer-foreign-module", lambda m, x: camlib.grad_cam(m, x, nn.ReLU()), ValueError, "not inside this model"),
    ("layer-int", lambda m, x: camlib.grad_cam(m, x, 3), TypeError, "layer must be"),
    ("layer-not-a-map", lambda m, x: camlib.grad_cam(m, x, "fc"), ValueError, "4-D"),
    ("cam-vgg-suggests-a-conv-layer", lambda m, x: camlib.cam(VGGLike().double(), x), ValueError,
     r"grad_cam\(model, x, layer='features'\)"),
    ("cam-explicit-pool-suggests-a-conv-layer", lambda m, x: camlib.cam(VGGLike().double(), x, "avgpool"),
     ValueError, r"layer='features'\)"),
    ("cam-not-gap", lambda m, x: camlib.cam(deep_head_net(seed=0), x), ValueError, "grad_cam"),
    # inputs
    ("x-one-image", lambda m, x: camlib.grad_cam(m, x[0], "features"), ValueError, r"unsqueeze\(0\)"),
    ("x-flat", lambda m, x: camlib.saliency(m, x.flatten(1)), ValueError, "4-D"),
    ("x-numpy", lambda m, x: camlib.saliency(m, x.numpy()), TypeError, r"torch\.as_tensor"),
    ("x-int", lambda m, x: camlib.saliency(m, x.long()), TypeError, "floating-point"),
    ("x-empty", lambda m, x: camlib.saliency(m, x[:0]), ValueError, "empty batch"),
    ("x-nan", lambda m, x: camlib.integrated_gradients(m, _nan(x)), ValueError, "NaN or infinite"),
    ("x-inf", lambda m, x: camlib.occlusion(m, _inf(x)), ValueError, "NaN or infinite"),
    ("x-channels", lambda m, x: camlib.grad_cam(m, x[:, :2], "features"), ValueError,
     r"2 channels but the model's first convolution expects 3"),
    ("x-channels-metric", lambda m, x: metrics.deletion(m, x[:, :1], torch.rand(2, 8, 8), steps=2), ValueError,
     "1 channels but"),
    ("model-not-a-module", lambda m, x: camlib.saliency(lambda v: v, x), TypeError, "torch.nn.Module"),
    ("model-output-map", lambda m, x: camlib.grad_cam(MapModel(), x.float(), "features"), ValueError, r"\(N, classes\)"),
    ("model-output-map-pixel", lambda m, x: camlib.saliency(MapModel(), x.float()), ValueError, r"\(N, classes\)"),
    # targets
    ("target-too-big", lambda m, x: camlib.grad_cam(m, x, "features", target=4), ValueError, r"0\.\.3"),
    ("target-negative", lambda m, x: camlib.occlusion(m, x, target=[0, -1]), ValueError, "out of range"),
    ("target-2**70", lambda m, x: camlib.grad_cam(m, x, "features", target=2**70), ValueError, "out of range"),
    ("target-2**70-in-list", lambda m, x: camlib.saliency(m, x, target=[0, 2**70]), ValueError, "out of range"),
    ("target-too-many", lambda m, x: camlib.grad_cam(m, x, "features", target=[0, 1, 2]), ValueError,
     "3 entries but the batch has N = 2"),
    ("target-too-few", lambda m, x: camlib.saliency(m, x, target=torch.tensor([1])), ValueError, "1 entries"),
    ("target-float-tensor", lambda m, x: camlib.saliency(m, x, target=torch.tensor([1.0, 2.0])), TypeError,
     "integer class"),
    ("target-float-numpy", lambda m, x: camlib.saliency(m, x, target=np.array([1.0, 2.0])), TypeError,
     "integer class"),
    ("target-2d", lambda m, x: camlib.saliency(m, x, target=torch.zeros(2, 1, dtype=torch.long)), ValueError,
     "flatten"),
    ("target-dict", lambda m, x: camlib.saliency(m, x, target={0: 1}), TypeError, "target must be"),
    # scores and options
    ("score-unknown", lambda m, x: camlib.grad_cam(m, x, "features", score="prob"), ValueError, "score must be"),
    ("score-cam-softmax", lambda m, x: camlib.cam(m, x, score="softmax"), ValueError, "logit only"),
    ("score-grad-cam-pp-softmax", lambda m, x: camlib.grad_cam_pp(m, x, "features", score="softmax"), ValueError,
     "logit only"),
    ("variant-unknown", lambda m, x: camlib.grad_cam_pp(m, x, "features", variant="torchcam"), ValueError, "variant"),
    ("rule-unknown", lambda m, x: camlib.integrated_gradients(m, x, rule="simpson"), ValueError, "rule must be"),
    ("steps-float", lambda m, x: camlib.integrated_gradients(m, x, steps=2.5), TypeError, "steps must be an int"),
    ("steps-zero", lambda m, x: camlib.integrated_gradients(m, x, steps=0), ValueError, "steps must be at least 1"),
    ("steps-float-deletion", lambda m, x: metrics.deletion(m, x, torch.rand(2, 8, 8), steps=2.5), TypeError,
     "steps must be an int"),
    ("batch-size-zero", lambda m, x: camlib.occlusion(m, x, batch_size=0), ValueError, "batch_size"),
    ("patch-too-big", lambda m, x: camlib.occlusion(m, x, patch=9), ValueError, "larger than the image"),
    ("patch-float", lambda m, x: camlib.occlusion(m, x, patch=2.5), TypeError, "pair of ints"),
    # baselines and substrates
    ("baseline-numpy", lambda m, x: camlib.integrated_gradients(m, x, baseline=np.zeros((3, 8, 8))), TypeError,
     r"torch\.as_tensor"),
    ("baseline-shape", lambda m, x: camlib.integrated_gradients(m, x, baseline=torch.zeros(3, 4, 4)), ValueError,
     "does not match the input"),
    ("baseline-shape-occlusion", lambda m, x: camlib.occlusion(m, x, baseline=torch.zeros(5, 3, 8, 8)), ValueError,
     "does not match the input"),
    ("baseline-string", lambda m, x: camlib.occlusion(m, x, baseline="grey"), TypeError, "baseline must be"),
    ("substrate-shape", lambda m, x: metrics.deletion(m, x, torch.rand(2, 8, 8), substrate=torch.zeros(3, 4, 4)),
     ValueError, "substrate of shape"),
    ("substrate-numpy", lambda m, x: metrics.insertion(m, x, torch.rand(2, 8, 8), substrate=np.zeros((3, 8, 8))),
     TypeError, r"torch\.as_tensor"),
    ("baseline-shape-completeness", lambda m, x: axioms.completeness(m, x, camlib.saliency(m, x),
                                                                     baseline=torch.zeros(1, 3, 2, 2)),
     ValueError, "does not match the input"),
    # results given to axioms and metrics
    ("axiom-batch-mismatch-conservation", lambda m, x: axioms.conservation_violation(
        m, x[:1], camlib.grad_cam(m, x, "features")), ValueError, "pass the input the result was computed for"),
    ("axiom-batch-mismatch-sensitivity", lambda m, x: axioms.sensitivity_violation(
        m, x, "features", camlib.grad_cam(m, x[:1], "features")), ValueError, "pass the input the result"),
    ("axiom-batch-mismatch-completeness", lambda m, x: axioms.completeness(
        m, x[:1], camlib.saliency(m, x)), ValueError, "pass the input the attribution was computed for"),
    ("metric-batch-mismatch", lambda m, x: metrics.deletion(m, x, torch.rand(3, 8, 8), steps=2), ValueError,
     "3 maps for 2 images"),
    # post-processing and the core
    ("normalize-empty", lambda m, x: camlib.normalize(torch.zeros(0, 4, 4)), ValueError, "empty"),
    ("upsample-empty", lambda m, x: camlib.upsample(torch.zeros(2, 0, 4), 8), ValueError, "empty"),
    ("upsample-size-string", lambda m, x: camlib.upsample(torch.rand(2, 4, 4), "64"), TypeError, "pair of ints"),
    ("upsample-size-triple", lambda m, x: camlib.upsample(torch.rand(2, 4, 4), (8, 8, 8)), TypeError, "pair of ints"),
    ("upsample-size-zero", lambda m, x: camlib.upsample(torch.rand(2, 4, 4), (0, 8)), ValueError, "positive"),
    ("upsample-size-float", lambda m, x: camlib.upsample(torch.rand(2, 4, 4), 8.5), TypeError, "pair of ints"),
    ("weighted-sum-dtypes", lambda m, x: camlib.channel_weighted_sum(torch.rand(2, 3), torch.rand(2, 3, 4, 4).double()),
     TypeError, "same dtype"),
    ("weighted-sum-shapes", lambda m, x: camlib.channel_weighted_sum(torch.rand(2, 2), torch.rand(2, 3, 4, 4)),
     ValueError, "weights must be"),
    ("weighted-sum-nan", lambda m, x: camlib.channel_weighted_sum(torch.full((2, 3), float("nan")), torch.rand(2, 3, 4, 4)),
     ValueError, "NaN or infinite"),
    ("weight-rule-nan-gradients", lambda m, x: weight_rules.grad_cam_pp_weights(
        torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4).masked_fill(torch.eye(4, dtype=torch.bool), float("nan"))),
     ValueError, "gradients contain NaN"),
    ("weight-rule-inf-activations", lambda m, x: weight_rules.xgrad_cam_weights(
        torch.full((1, 2, 3, 3), float("inf")), torch.rand(1, 2, 3, 3)), ValueError, "activations contain NaN"),
    ("smooth-grad-unknown-option", lambda m, x: camlib.smooth_grad(m, x, camlib.saliency, samples=2, steps=4),
     TypeError, r"saliency has no option \['steps'\]; the options smooth_grad can pass on to it are \['absolute'\]"),
    # metrics: arguments other than the model, input and target
    ("metric-seed-string", lambda m, x: metrics.deletion(m, x, torch.rand(2, 8, 8), steps=2, seed="a"), TypeError,
     "seed must be an int"),
    ("randomization-seed-float", lambda m, x: metrics.randomization_test(camlib.saliency, m, x, layers=["fc"], seed=0.5),
     TypeError, "seed must be an int"),
    ("randomization-layer-without-parameters", lambda m, x: metrics.randomization_test(
        camlib.grad_cam, m, x, layer="features", layers=["pool"]), ValueError, r"\['pool'\] have no parameters"),
    ("invariance-explainer-not-callable", lambda m, x: axioms.implementation_invariance("saliency", m, m, x), TypeError,
     "explainer must be a camlib method"),
    ("average-drop-relative-string", lambda m, x: metrics.average_drop(m, x, torch.rand(2, 8, 8), relative="yes"),
     TypeError, "relative must be True or False"),
    ("pointing-tolerance-float", lambda m, x: metrics.pointing_game(torch.rand(2, 8, 8), torch.ones(2, 8, 8, dtype=torch.bool),
                                                                    tolerance=1.5), TypeError, "tolerance"),
    ("pointing-tolerance-negative", lambda m, x: metrics.pointing_game(torch.rand(2, 8, 8), torch.ones(2, 8, 8, dtype=torch.bool),
                                                                       tolerance=-1), ValueError, "at least 0"),
    ("pointing-soft-masks", lambda m, x: metrics.pointing_game(torch.rand(2, 8, 8), torch.rand(2, 8, 8)), ValueError,
     "masks > 0.5"),
    ("iou-threshold-string", lambda m, x: metrics.iou(torch.rand(2, 8, 8), torch.ones(2, 8, 8, dtype=torch.bool),
                                                      threshold="0.2"), TypeError, "threshold must be a number"),
    ("to-map-complex", lambda m, x: metrics.to_map(torch.ones(2, 4, 4, dtype=torch.complex64)), TypeError, "real numbers"),
    ("auc-list", lambda m, x: metrics.auc([[0.0, 1.0]]), TypeError, r"torch\.as_tensor"),
    ("auc-nan", lambda m, x: metrics.auc(torch.tensor([[0.0, float("nan")]])), ValueError, "NaN or infinite"),
    ("blur-one-image", lambda m, x: metrics.blur(x[0]), ValueError, r"unsqueeze\(0\)"),
    ("blur-int-image", lambda m, x: metrics.blur(x.long()), TypeError, "floating-point"),
    ("blur-nan-image", lambda m, x: metrics.blur(_nan(x)), ValueError, "NaN or infinite"),
    ("blur-kernel-float", lambda m, x: metrics.blur(x, kernel=3.0), TypeError, "kernel must be an int"),
    ("blur-sigma-nan", lambda m, x: metrics.blur(x, sigma=float("nan")), ValueError, "sigma must be finite"),
    ("by-class-float-labels", lambda m, x: metrics.by_class(torch.rand(2), torch.tensor([0.5, 1.0])), TypeError,
     "integer class indices"),
    ("by-class-nan-values", lambda m, x: metrics.by_class(torch.tensor([float("nan"), 1.0]), torch.tensor([0, 1])),
     ValueError, "NaN or infinite"),
    ("scaled-tolerance-reference-zero", lambda m, x: metrics.scaled_tolerance(224, reference=0), ValueError,
     "reference must be > 0"),
    ("scaled-tolerance-pixels-nan", lambda m, x: metrics.scaled_tolerance(224, pixels=float("nan")), ValueError,
     "pixels must be finite"),
]


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_camlibs_error(call, error, match, gap_model, two_images):
    model, x = gap_model, two_images
    with pytest.raises(error, match=match):
        call(model, x)
