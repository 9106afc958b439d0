"""camlib.models: architecture contract, bundled weights (SHA-256), accuracy and localisation.

Acceptance figures of issue 4 (on the fixed held-out set ``test_set(1000)``):
GAP model >= 98 % accuracy and CAM pointing game >= 90 %; FC model >= 95 %; spurious-cue model
>= 95 % with the cue and >= 30 points lower with the cue removed or moved to another class.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camlib import models
from camlib.data import make_shapes, test_set
from camlib.models import (
    MODEL_NAMES,
    WEIGHTS_DIR,
    ShapesFCNet,
    ShapesGAPNet,
    WeightsError,
    build_model,
    imagenet_model,
    load_model,
)


@pytest.fixture(scope="module")
def held_out():
    return test_set(1000)


class _Lazy(dict):
    """Loads each bundled model on first use, so one bad file fails only its own tests."""

    def __missing__(self, name):
        self[name] = load_model(name)
        return self[name]


@pytest.fixture(scope="module")
def loaded():
    return _Lazy()


@torch.no_grad()
def _acc(model, images, labels):
    return float((model(images).argmax(1) == labels).double().mean())


# --------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("cls", [ShapesGAPNet, ShapesFCNet])
def test_no_inplace_no_batchnorm_no_dropout(cls):
    model = cls()
    for mod in model.modules():
        assert not getattr(mod, "inplace", False), mod
        assert not isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout)), mod
    assert isinstance(model.features, nn.Sequential)
    last = model.features[-1]
    assert isinstance(last, nn.ReLU) and not last.inplace


def test_normalisation_inside_the_model():
    model = ShapesGAPNet()
    grey = torch.full((1, 3, 8, 8), 0.5)
    assert torch.equal(model.norm(grey), torch.zeros_like(grey))
    black = torch.zeros(1, 3, 8, 8)
    assert torch.allclose(model.norm(black), torch.full_like(black, -2.0))


def test_gap_head_is_mean_then_linear_and_cam_identity():
    # logit_c = b_c + sum_k w_ck mean_ij A^k_ij = b_c + mean_ij CAM_c (docs/math.md (4.2))
    torch.manual_seed(0)
    model = ShapesGAPNet().double().eval()
    x = torch.rand(3, 3, 64, 64, dtype=torch.float64)
    a = model.features(model.norm(x))
    assert a.shape == (3, 64, 8, 8) and bool((a >= 0).all())
    assert torch.allclose(model.pool(a), a.mean(dim=(2, 3)), atol=0, rtol=0)
    y = model(x)
    cam = torch.einsum("ck,nkhw->nchw", model.fc.weight, a)
    assert torch.allclose(cam.mean(dim=(2, 3)) + model.fc.bias, y, atol=1e-12)


def test_fc_head_is_not_gap_linear():
    torch.manual_seed(0)
    model = ShapesFCNet().double().eval()
    assert isinstance(model.head[0], nn.Flatten) and isinstance(model.head[2], nn.ReLU)
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    a = model.features(model.norm(x))
    assert a.shape == (2, 64, 8, 8)
    assert torch.allclose(model.head(a), model(x), atol=0, rtol=0)
    # moving activation mass between positions changes the output (a GAP head would not see it)
    rolled = torch.roll(a, shifts=3, dims=3)
    assert not torch.allclose(model.head(a), model.head(rolled), atol=1e-6)


def test_build_model_and_names():
    assert isinstance(build_model("gap"), ShapesGAPNet)
    assert isinstance(build_model("fc"), ShapesFCNet)
    assert isinstance(build_model("spurious"), ShapesGAPNet)
    with pytest.raises(ValueError, match="gap"):
        build_model("resnet")
    with pytest.raises(ValueError, match="gap"):
        load_model("vgg")


# --------------------------------------------------------------------------- bundled weights


def test_weights_json_records_sha_and_accuracy():
    info = models.weights_info()
    for name in MODEL_NAMES:
        entry = info[name]
        path = WEIGHTS_DIR / entry["file"]
        assert path.is_file()
        assert path.stat().st_size < 2_000_000, f"{path.name} is over 2 MB"
        assert models.sha256_file(path) == entry["sha256"]
        assert 0.0 <= entry["accuracy"]["test"] <= 1.0
        assert entry["train_seconds"] > 0


def test_load_model_eval_mode_and_weights_only(loaded):
    for name in MODEL_NAMES:
        model = loaded[name]
        assert not model.training
        state = torch.load(WEIGHTS_DIR / f"{name}.pt", weights_only=True)
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k])


def _copy_weights(tmp_path: Path) -> Path:
    dst = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, dst)
    return dst


def test_tampered_file_raises_clear_error(tmp_path):
    wdir = _copy_weights(tmp_path)
    raw = bytearray((wdir / "gap.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (wdir / "gap.pt").write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match=r"python -m camlib\.training"):
        load_model("gap", weights_dir=wdir)
    with pytest.raises(ValueError, match="SHA-256"):
        load_model("gap", weights_dir=wdir)
    load_model("fc", weights_dir=wdir)  # the untouched files still load


def test_missing_file_or_record_raises_clear_error(tmp_path):
    wdir = _copy_weights(tmp_path)
    (wdir / "fc.pt").unlink()
    with pytest.raises(WeightsError, match=r"missing.*python -m camlib\.training"):
        load_model("fc", weights_dir=wdir)
    info = json.loads((wdir / "weights.json").read_text())
    del info["gap"]
    (wdir / "weights.json").write_text(json.dumps(info))
    with pytest.raises(WeightsError, match=r"python -m camlib\.training"):
        load_model("gap", weights_dir=wdir)
    (wdir / "weights.json").unlink()
    with pytest.raises(WeightsError, match=r"python -m camlib\.training"):
        load_model("spurious", weights_dir=wdir)


# --------------------------------------------------------------------------- acceptance


def test_gap_accuracy(loaded, held_out):
    acc = _acc(loaded["gap"], held_out.images, held_out.labels)
    assert acc >= 0.98, acc


def test_gap_cam_pointing_game(loaded, held_out):
    # CAM_c = sum_k w_ck A^k for the true class c, bilinearly upsampled to 64 x 64;
    # a hit when its arg-max pixel lies inside the object's mask
    model = loaded["gap"]
    with torch.no_grad():
        a = model.features(model.norm(held_out.images))
    w = model.fc.weight[held_out.labels]  # (N, K)
    cam = torch.einsum("nk,nkhw->nhw", w, a)
    up = F.interpolate(cam[:, None], size=held_out.masks.shape[-2:], mode="bilinear",
                       align_corners=False)[:, 0]
    idx = up.flatten(1).argmax(1)
    hits = held_out.masks.flatten(1).gather(1, idx[:, None])[:, 0]
    rate = float(hits.double().mean())
    assert rate >= 0.90, rate


def test_fc_accuracy(loaded, held_out):
    acc = _acc(loaded["fc"], held_out.images, held_out.labels)
    assert acc >= 0.95, acc


def test_spurious_model_relies_on_the_cue(loaded):
    model = loaded["spurious"]
    acc = {k: _acc(model, s.images, s.labels)
           for k in ("train", "absent", "swapped")
           for s in [test_set(1000, spurious=k)]}
    assert acc["train"] >= 0.95, acc
    assert acc["train"] - min(acc["absent"], acc["swapped"]) >= 0.30, acc


def test_recorded_accuracy_matches_measured(loaded, held_out):
    info = models.weights_info()
    for name in ("gap", "fc"):
        acc = _acc(loaded[name], held_out.images, held_out.labels)
        assert abs(acc - info[name]["accuracy"]["test"]) <= 0.002  # batching may flip a tie


def test_gap_model_on_other_image_sizes(loaded):
    # GAP makes the course model size-agnostic (the FC head is tied to 64 x 64)
    s = make_shapes(4, seed=1, size=96)
    assert loaded["gap"](s.images).shape == (4, 4)


# --------------------------------------------------------------------------- ImageNet helper


def test_imagenet_model_random_init():
    torch.manual_seed(0)
    model = imagenet_model("resnet18", pretrained=False)
    assert not model.training
    assert model.fc.out_features == 1000
    with pytest.raises(ValueError, match="resnet18"):
        imagenet_model("no_such_net")


def _forbid_downloads(monkeypatch):
    def forbidden(*args, **kwargs):  # pragma: no cover - would mean a download attempt
        raise AssertionError("imagenet_model tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)


def _cache_file(torch_home: Path, name: str = "resnet18") -> Path:
    import os

    import torchvision

    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return torch_home / "hub" / "checkpoints" / os.path.basename(url)


def test_imagenet_pretrained_never_downloads_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _forbid_downloads(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"download=True") as info:
        imagenet_model("resnet18", pretrained=True)
    assert str(_cache_file(tmp_path)) in str(info.value)
    assert not (tmp_path / "hub").exists()  # not even the cache folder is created
    with pytest.raises(ValueError, match="pretrained=True"):
        imagenet_model("resnet18", download=True)


def test_imagenet_pretrained_from_local_cache(tmp_path, monkeypatch):
    # a file already in the cache is used (here: random weights saved under the expected name)
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _forbid_downloads(monkeypatch)
    path = _cache_file(tmp_path)
    path.parent.mkdir(parents=True)
    torch.manual_seed(1)
    ref = torchvision.models.resnet18()
    torch.save(ref.state_dict(), path)
    for download in (False, True):  # with the file present, download=True fetches nothing
        model = imagenet_model("resnet18", pretrained=True, download=download)
        assert torch.equal(model.conv1.weight, ref.conv1.weight)
        assert not model.training
        assert len(model.output_names) == 1000 and model.output_names[281] == "tabby"
    assert not hasattr(imagenet_model("resnet18"), "output_names")


def test_imagenet_download_only_when_asked(tmp_path, monkeypatch):
    # download=True fetches into the cache (a fake fetch here), then loads weights_only
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(2)
    ref = torchvision.models.resnet18()
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        torch.save(ref.state_dict(), dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = imagenet_model("resnet18", pretrained=True, download=True)
    assert torch.equal(model.fc.weight, ref.fc.weight)
    (url, dst, prefix), = calls
    assert dst == str(_cache_file(tmp_path)) and url.endswith(Path(dst).name)
    assert prefix and prefix in Path(dst).name  # torchvision's hash prefix is checked
    imagenet_model("resnet18", pretrained=True)  # now cached: no second download
    assert len(calls) == 1
