"""camlib.substrates: constant, blur, mean colour and ROAD's noisy linear imputation (math 10.9, 10.17, 10.18)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch

from camlib import metrics, substrates
from camlib.substrates import fill, mean_colour, noisy_linear_imputation, substrate_image


def _images(n=3, c=3, h=12, w=10, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _removed(n=3, h=12, w=10, p=0.4, seed=1):
    return torch.rand(n, h, w, generator=torch.Generator().manual_seed(seed)) < p


def test_constant_substrates_and_tensors():
    x = _images()
    assert torch.equal(substrate_image(x, "black"), torch.zeros_like(x))
    assert torch.equal(substrate_image(x, "grey"), torch.full_like(x, 0.5))
    assert torch.equal(substrate_image(x, 0.25), torch.full_like(x, 0.25))
    colour = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.equal(substrate_image(x, colour)[2, :, 4, 5], colour.flatten())
    removed = _removed()
    out = fill(x, removed, "black")
    assert torch.equal(out[removed[:, None].expand_as(x)], torch.zeros(int(removed.sum()) * 3, dtype=x.dtype))
    assert torch.equal(out[~removed[:, None].expand_as(x)], x[~removed[:, None].expand_as(x)])


def test_blur_substrate_is_the_one_blur_of_the_package():
    x = _images(h=20, w=20)
    assert torch.equal(substrate_image(x, "blur"), metrics.blur(x))


def test_mean_colour_fills_each_removed_pixel_with_its_image_channel_mean():
    x, removed = _images(), _removed()
    out = fill(x, removed, "mean")
    means = x.mean(dim=(2, 3))
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            assert torch.allclose(out[i, c][removed[i]], means[i, c].expand(int(removed[i].sum())))
            assert torch.equal(out[i, c][~removed[i]], x[i, c][~removed[i]])
    assert torch.equal(mean_colour(x)[1, 2], means[1, 2].expand(12, 10))


def test_mean_colour_deletion_of_a_linear_score_is_the_sorted_cumulative_sum():
    # F(u) = <w, u> + b: removing S with the mean colour m lowers F by sum_{p in S} w_p . (x_p - m)
    torch.manual_seed(0)
    x = _images(n=1, h=8, w=8)
    w = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    contribution = (w * (x - mean_colour(x))).sum(1)[0]  # per pixel, all channels together
    order = contribution.flatten().argsort(descending=True)
    total = float((w * x).sum())
    removed = torch.zeros(64, dtype=torch.bool)
    for k in range(0, 65, 8):
        removed[:] = False
        removed[order[:k]] = True
        value = float((w * fill(x, removed.view(1, 8, 8), "mean")).sum())
        assert value == pytest.approx(total - float(contribution.flatten()[order[:k]].sum()), abs=1e-10)


def _direct_solve(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Reference: the ROAD system assembled entry by entry and solved by SciPy's sparse LU."""
    h, w = removed.shape
    unknown = [(r, c) for r in range(h) for c in range(w) if removed[r, c]]
    index = {p: i for i, p in enumerate(unknown)}
    a = scipy.sparse.lil_matrix((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), image.shape[0]))
    for i, (r, c) in enumerate(unknown):
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (dr, dc) == (0, 0) or not (0 <= r + dr < h and 0 <= c + dc < w):
                    continue
                weight = 1 / 12 if dr and dc else 1 / 6
                a[i, i] += weight
                if removed[r + dr, c + dc]:
                    a[i, index[(r + dr, c + dc)]] -= weight
                else:
                    b[i] += weight * image[:, r + dr, c + dc]
    solution = scipy.sparse.linalg.spsolve(a.tocsc(), b)
    out = image.copy()
    for i, (r, c) in enumerate(unknown):
        out[:, r, c] = solution[i]
    return out


def test_road_imputation_matches_a_direct_sparse_solve():
    x, removed = _images(), _removed(p=0.6)
    out = noisy_linear_imputation(x, removed, noise=0.0, tol=1e-12)
    for i in range(x.shape[0]):
        expected = _direct_solve(x[i].numpy(), removed[i].numpy())
        assert np.allclose(out[i].numpy(), expected, atol=1e-9)


def test_road_imputed_values_are_the_weighted_mean_of_their_neighbours():
    x, removed = _images(n=2, h=9, w=9), _removed(n=2, h=9, w=9, p=0.5)
    out = noisy_linear_imputation(x, removed, noise=0.0, tol=1e-12)
    padded = torch.nn.functional.pad(out, (1, 1, 1, 1))
    inside = torch.nn.functional.pad(torch.ones(1, 1, 9, 9, dtype=x.dtype), (1, 1, 1, 1))
    num = torch.zeros_like(out)
    den = torch.zeros(1, 1, 9, 9, dtype=x.dtype)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                weight = 1 / 12 if dr and dc else 1 / 6
                num += weight * padded[..., 1 + dr : 10 + dr, 1 + dc : 10 + dc]
                den += weight * inside[..., 1 + dr : 10 + dr, 1 + dc : 10 + dc]
    mask = removed[:, None].expand_as(out)
    assert torch.allclose(out[mask], (num / den)[mask], atol=1e-9)


def test_road_reproduces_constant_and_affine_images():
    h, w = 16, 16
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    affine = torch.stack([0.2 + 0.03 * rows - 0.01 * cols, 0.5 + 0.02 * cols, 0.7 - 0.02 * rows])[None]
    constant = torch.full((1, 3, h, w), 0.4, dtype=torch.float64)
    interior = torch.zeros(1, h, w, dtype=torch.bool)
    interior[0, 3:12, 2:9] = True
    interior[0, 13, 13] = True
    assert torch.allclose(noisy_linear_imputation(affine, interior, noise=0.0, tol=1e-13), affine, atol=1e-9)
    anywhere = _removed(n=1, h=h, w=w, p=0.7)
    assert torch.allclose(noisy_linear_imputation(constant, anywhere, noise=0.0, tol=1e-13), constant, atol=1e-9)


def test_road_noise_is_seeded_and_touches_only_removed_pixels():
    x, removed = _images(), _removed()
    a = noisy_linear_imputation(x, removed, seed=3)
    b = noisy_linear_imputation(x, removed, seed=3)
    c = noisy_linear_imputation(x, removed, seed=4)
    clean = noisy_linear_imputation(x, removed, noise=0.0)
    assert torch.equal(a, b) and not torch.equal(a, c)
    kept = ~removed[:, None].expand_as(x)
    assert torch.equal(a[kept], x[kept])
    noise = (a - clean)[~kept]
    assert 0.5 * substrates.ROAD_NOISE < float(noise.std()) < 2 * substrates.ROAD_NOISE


def test_road_with_everything_removed_gives_the_mean_colour():
    x = _images(n=2)
    out = noisy_linear_imputation(x, torch.ones(2, 12, 10, dtype=torch.bool), noise=0.0)
    assert torch.allclose(out, mean_colour(x))
    assert torch.equal(fill(x, torch.zeros(2, 12, 10, dtype=torch.bool), "road"), x)


def test_road_works_in_float32_like_the_models():
    x, removed = _images().float(), _removed(p=0.7)
    out = fill(x, removed, "road")
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    ref = noisy_linear_imputation(x.double(), removed, noise=0.0, tol=1e-12).float()
    clean = noisy_linear_imputation(x, removed, noise=0.0)
    assert torch.allclose(clean, ref, atol=1e-4)


def test_a_substrate_function_fills_only_the_removed_pixels():
    x, removed = _images(), _removed()
    out = fill(x, removed, lambda images, gone: torch.full_like(images, 0.7))
    mask = removed[:, None].expand_as(x)
    assert torch.equal(out[mask], torch.full_like(out[mask], 0.7)) and torch.equal(out[~mask], x[~mask])
    assert not substrates.is_fixed(lambda images, gone: images)
    with pytest.raises(ValueError, match="shape"):
        fill(x, removed, lambda images, gone: images[:1])
    with pytest.raises(ValueError, match="NaN"):
        fill(x, removed, lambda images, gone: images * float("nan"))


def test_which_substrates_are_fixed():
    assert substrates.is_fixed("mean") and substrates.is_fixed(0.0) and substrates.is_fixed("blur")
    assert not substrates.is_fixed("road")
    with pytest.raises(ValueError, match="fill"):
        substrate_image(_images(), "road")


@pytest.mark.parametrize(
    "bad, error, message",
    [("zeros", ValueError, "unknown substrate"), (True, TypeError, "bool"), ([0.1], TypeError, "a function")],
)
def test_bad_substrates_get_clear_errors(bad, error, message):
    with pytest.raises(error, match=message):
        fill(_images(), _removed(), bad)


def test_bad_removed_masks_get_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        fill(_images(), torch.zeros(3, 5, 5, dtype=torch.bool), "mean")
    with pytest.raises(TypeError, match="bool tensor"):
        fill(_images(), np.zeros((3, 12, 10), dtype=bool), "mean")
