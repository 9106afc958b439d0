"""Small deterministic float64 networks with known closed forms, shared by the test files.

Import read-only: ``from tiny_nets import gap_net, ...`` (tests/ is on ``sys.path`` under
pytest's default rootdir-based import mode) or ``from tests.tiny_nets import ...``.

Every builder takes a ``seed`` and returns an eval-mode float64 module. The CAM layer is
``"features"`` (output of a non-inplace ReLU, so ``A >= 0``) and the fc layer ``"fc"``,
like the course models.

* :func:`gap_net`        features -> mean GAP -> fc (with bias): ``dY/dA = W/Z`` everywhere
* :func:`sum_gap_net`    the same with a **sum** pool (the CAM paper's notation)
* :func:`gap_net(bias=False)`  bias-free everywhere (XGrad-CAM conservation is exact)
* :func:`smooth_net`     gap_net with tanh activations (smooth everywhere)
* :func:`fc_head_net`    features -> flatten -> hidden ReLU -> out: not GAP-linear
* :func:`deep_head_net`  features -> conv -> ReLU -> max-pool -> flatten -> fc, bias-free option
* :func:`linear_net`     ``F(x) = sum w * x + b`` per class (for IG / occlusion closed forms)
* IG paper toy functions on inputs of shape (N, 1, 1, d): :class:`OneMinusReluNet`
  (``1 - ReLU(1 - x)``), :class:`PaperF` / :class:`PaperG` (Appendix B, ``f == g``),
  :class:`MinNet` (``min(x1, x2)``)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

DTYPE = torch.float64


def _init(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    return module.to(DTYPE).eval()


def _features(c_in: int, k: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, 6, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.Conv2d(6, k, 3, padding=1, bias=bias),
        nn.ReLU(),
    )


class SumPool(nn.Module):
    """Global **sum** pooling (N, K, h, w) -> (N, K)."""

    def forward(self, a: Tensor) -> Tensor:
        return a.sum(dim=(2, 3))


class MeanPool(nn.Module):
    """Global **mean** pooling (N, K, h, w) -> (N, K)."""

    def forward(self, a: Tensor) -> Tensor:
        return a.mean(dim=(2, 3))


class GapNet(nn.Module):
    """``Y = fc(pool(features(x)))``; ``pool`` is a mean or a sum over space."""

    def __init__(self, c_in: int = 3, k: int = 5, classes: int = 4, pool: str = "mean",
                 bias: bool = True) -> None:
        super().__init__()
        self.features = _features(c_in, k, bias)
        self.pool = MeanPool() if pool == "mean" else SumPool()
        self.fc = nn.Linear(k, classes, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(x)))


class FCHeadNet(nn.Module):
    """Not GAP-linear: ``features -> flatten -> Linear -> ReLU -> Linear``."""

    def __init__(self, c_in: int = 3, k: int = 5, size: int = 8, classes: int = 4,
                 hidden: int = 7, bias: bool = True) -> None:
        super().__init__()
        self.features = _features(c_in, k, bias)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(k * size * size, hidden, bias=bias), nn.ReLU(),
            nn.Linear(hidden, classes, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class DeepHeadNet(nn.Module):
    """Piecewise-linear head above ``features``: conv -> ReLU -> 2x2 max-pool -> flatten -> fc."""

    def __init__(self, c_in: int = 3, k: int = 5, size: int = 8, classes: int = 4,
                 bias: bool = True) -> None:
        super().__init__()
        self.features = _features(c_in, k, bias)
        self.head = nn.Sequential(
            nn.Conv2d(k, 4, 3, padding=1, bias=bias), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        )
        self.fc = nn.Linear(4 * (size // 2) ** 2, classes, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.head(self.features(x)))


class LinearNet(nn.Module):
    """``F_c(x) = sum_i W_c,i x_i + b_c``: flatten then one Linear layer."""

    def __init__(self, shape: tuple[int, int, int] = (2, 5, 5), classes: int = 3) -> None:
        super().__init__()
        c, h, w = shape
        self.flat = nn.Flatten()
        self.fc = nn.Linear(c * h * w, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flat(x))


def gap_net(seed: int = 0, pool: str = "mean", bias: bool = True, **kw: int) -> GapNet:
    """Mean-GAP (default) or sum-GAP -> linear head network, float64, eval mode."""
    return _init(GapNet(pool=pool, bias=bias, **kw), seed)


def sum_gap_net(seed: int = 0, bias: bool = True, **kw: int) -> GapNet:
    """Sum-GAP -> linear head network (the CAM paper's ``F_k = sum_xy f_k``)."""
    return gap_net(seed, pool="sum", bias=bias, **kw)


def smooth_net(seed: int = 0, **kw: int) -> GapNet:
    """A mean-GAP net with ``tanh`` instead of ReLU: analytic, so quadrature converges fast."""
    net = GapNet(**kw)
    net.features[1] = nn.Tanh()
    net.features[3] = nn.Tanh()
    return _init(net, seed)


def fc_head_net(seed: int = 0, **kw: int) -> FCHeadNet:
    """A head that is not GAP-linear (CAM does not apply)."""
    return _init(FCHeadNet(**kw), seed)


def deep_head_net(seed: int = 0, bias: bool = True, **kw: int) -> DeepHeadNet:
    """Piecewise-linear conv / max-pool / fc head above ``features``."""
    return _init(DeepHeadNet(bias=bias, **kw), seed)


def linear_net(seed: int = 0, shape: tuple[int, int, int] = (2, 5, 5), classes: int = 3) -> LinearNet:
    """A linear model on images (the course's linear-regression warm-up)."""
    return _init(LinearNet(shape, classes), seed)


def images(n: int = 2, c: int = 3, size: int = 8, seed: int = 1) -> Tensor:
    """Random float64 images (N, C, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, size, size, generator=gen, dtype=DTYPE)


# --------------------------------------------------------------------------- IG paper toys
# Inputs have shape (N, 1, 1, d); outputs (N, 1).


class OneMinusReluNet(nn.Module):
    """``f(x) = 1 - ReLU(1 - x)`` (IG paper, Sensitivity(a)): flat at x = 2."""

    def forward(self, x: Tensor) -> Tensor:
        v = x.flatten(1)[:, :1]
        return 1 - torch.relu(1 - v)


class PaperF(nn.Module):
    """IG paper Appendix B: ``f = ReLU(ReLU(x1) - 1 - ReLU(x2))``."""

    def forward(self, x: Tensor) -> Tensor:
        v = x.flatten(1)
        h = torch.relu(v[:, :1]) - 1 - torch.relu(v[:, 1:2])
        return torch.relu(h)


class PaperG(nn.Module):
    """IG paper Appendix B: ``g = ReLU(ReLU(x1 - 1) - ReLU(x2))``; ``f == g`` everywhere."""

    def forward(self, x: Tensor) -> Tensor:
        v = x.flatten(1)
        k = torch.relu(v[:, :1] - 1) - torch.relu(v[:, 1:2])
        return torch.relu(k)


class MinNet(nn.Module):
    """``min(x1, x2)`` (IG paper, symmetry preservation)."""

    def forward(self, x: Tensor) -> Tensor:
        v = x.flatten(1)
        return torch.minimum(v[:, :1], v[:, 1:2])


def point(*values: float) -> Tensor:
    """One input ``(1, 1, 1, d)`` in float64 for the toy functions."""
    return torch.tensor(values, dtype=DTYPE).view(1, 1, 1, -1)
