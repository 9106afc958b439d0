"""MTCNN's O-Net in camlib.models: bundled weights, provenance, architecture, heads, inputs.

The data side (LFW accuracy, the annotated photographs, landmark errors) is in test_faces.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from camlib import models, provenance, training
from camlib.models import (
    ONET_HEADS,
    ONET_LANDMARKS,
    ONET_OUTPUT_NAMES,
    WEIGHTS_DIR,
    ONet,
    WeightsError,
    landmarks_to_pixels,
    load_model,
    pixels_to_landmarks,
)

ONET_SHA256 = "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"
MEMBER = "facenet_pytorch/data/onet.pt"


@pytest.fixture(scope="module")
def onet():
    return load_model("onet")


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(0)
    return torch.rand(5, 3, 48, 48)


def _record(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """The outputs of the named layers in one forward pass (hooks removed afterwards)."""
    out = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: out.__setitem__(n, o)) for n in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def _copy_weights(tmp_path: Path) -> Path:
    dst = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, dst)
    return dst


def _write_info(wdir: Path, info: dict) -> None:
    (wdir / "weights.json").write_text(json.dumps(info, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------- bundled file


def test_weights_json_records_source_checksum_and_licence():
    entry = models.weights_info()["onet"]
    path = WEIGHTS_DIR / entry["file"]
    assert entry["file"] == "onet.pt" and path.is_file()
    assert entry["sha256"] == ONET_SHA256 == models.sha256_file(path)
    assert entry["bytes"] == path.stat().st_size == 1_559_269
    src = entry["source"]
    assert (src["package"], src["version"], src["member"]) == ("facenet-pytorch", "2.6.0", MEMBER)
    assert src["wheel"] == "facenet_pytorch-2.6.0-py3-none-any.whl"
    assert len(src["wheel_sha256"]) == 64
    assert entry["licence"]["name"] == "MIT"
    licence = (WEIGHTS_DIR / entry["licence"]["file"]).read_text(encoding="utf-8")
    assert "MIT License" in licence and "Copyright (c) 2019 Timothy Esler" in licence
    assert "Permission is hereby granted, free of charge" in licence
    assert "Zhang" in licence and "Qiao" in licence and "Signal Processing Letters" in licence
    assert "Qiao" in entry["citation"]


def test_load_is_checked_and_weights_only(monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = load_model("onet")
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert not model.training and isinstance(model, ONet) and model.head == "face"
    # the file is a plain state dict of exactly the architecture's tensors
    state = real_load(WEIGHTS_DIR / "onet.pt", map_location="cpu", weights_only=True)
    assert list(state) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_tampered_onet_file_is_rejected(tmp_path):
    wdir = _copy_weights(tmp_path)
    raw = bytearray((wdir / "onet.pt").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (wdir / "onet.pt").write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match=r"SHA-256.*python -m camlib\.provenance onet"):
        load_model("onet", weights_dir=wdir)
    (wdir / "onet.pt").unlink()
    with pytest.raises(WeightsError, match=r"missing.*facenet-pytorch==2\.6\.0"):
        load_model("onet", weights_dir=wdir)
    load_model("gap", weights_dir=wdir)  # the course models are unaffected


def test_training_cannot_write_the_onet_file(tmp_path):
    wdir = _copy_weights(tmp_path)
    before = (wdir / "onet.pt").read_bytes()
    with pytest.raises(ValueError, match="not a course model"):
        training.regenerate(("onet",), out_dir=wdir, verbose=False)
    with pytest.raises(ValueError, match="not a course model"):
        training.train_model("onet")
    with pytest.raises(SystemExit):
        training.main(["--only", "onet", "--out", str(wdir)])
    assert "onet" not in models.MODEL_NAMES and "onet" in models.ALL_MODELS
    assert (wdir / "onet.pt").read_bytes() == before


# --------------------------------------------------------------------------- weights.json paths


@pytest.mark.parametrize("bad", [
    "/etc/passwd",
    "../weights/onet.pt",
    "sub/../../onet.pt",
    "..",
    "",
    ".",
    "a\\..\\onet.pt",
    None,
    7,
])
def test_weights_json_file_must_stay_inside_the_folder(tmp_path, bad):
    wdir = _copy_weights(tmp_path)
    info = json.loads((wdir / "weights.json").read_text())
    info["onet"]["file"] = bad
    info["gap"]["file"] = bad
    _write_info(wdir, info)
    for name in ("onet", "gap"):
        with pytest.raises(WeightsError, match="inside that folder"):
            load_model(name, weights_dir=wdir)


def test_weights_json_symlink_leaving_the_folder_is_refused(tmp_path):
    wdir = _copy_weights(tmp_path)
    outside = tmp_path / "outside.pt"
    shutil.copy(wdir / "onet.pt", outside)
    try:
        (wdir / "escape.pt").symlink_to(outside)
        (wdir / "inside.pt").symlink_to(wdir / "onet.pt")
    except OSError:  # pragma: no cover - platforms without symlinks
        pytest.skip("symbolic links are not available here")
    info = json.loads((wdir / "weights.json").read_text())
    info["onet"]["file"] = "escape.pt"
    _write_info(wdir, info)
    with pytest.raises(WeightsError, match="inside that folder"):
        load_model("onet", weights_dir=wdir)
    info["onet"]["file"] = "inside.pt"  # a link that stays inside is an ordinary file here
    _write_info(wdir, info)
    assert isinstance(load_model("onet", weights_dir=wdir), ONet)


def test_weights_path_of_the_bundled_entries():
    for name in models.ALL_MODELS:
        path = models.weights_path(name)
        assert path.parent == WEIGHTS_DIR and path.is_file()
    with pytest.raises(WeightsError, match="no entry"):
        models.weights_path("nothing")


# --------------------------------------------------------------------------- provenance


def _wheel(tmp_path: Path, data: bytes, member: str = MEMBER) -> Path:
    path = tmp_path / "facenet_pytorch-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("facenet_pytorch/__init__.py", "")
        zf.writestr(member, data)
    return path


def test_provenance_check_passes_on_the_identical_member(tmp_path, capsys):
    wheel = _wheel(tmp_path, (WEIGHTS_DIR / "onet.pt").read_bytes())
    result = provenance.check_wheel("onet", wheel)
    assert result.ok and result.identical
    assert result.member_sha256 == result.recorded_sha256 == result.bundled_sha256 == ONET_SHA256
    assert result.member == MEMBER
    # a zip built here is not the recorded wheel, and the report says so without failing
    assert not result.wheel_is_recorded
    assert result.wheel_sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert provenance.main(["onet", str(wheel)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and ONET_SHA256 in out and "NOT the wheel recorded" in out


def test_provenance_check_fails_on_a_different_member(tmp_path, capsys):
    raw = bytearray((WEIGHTS_DIR / "onet.pt").read_bytes())
    raw[100] ^= 0xFF
    wheel = _wheel(tmp_path, bytes(raw))
    result = provenance.check_wheel("onet", wheel)
    assert not result.ok and not result.identical
    assert provenance.main(["onet", str(wheel)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    with pytest.raises(ValueError, match="refusing"):
        provenance.restore_from_wheel("onet", wheel, _copy_weights(tmp_path))


def test_provenance_errors(tmp_path, capsys):
    assert provenance.main(["onet", str(tmp_path / "absent.whl")]) == 2
    assert "pip download" in capsys.readouterr().err
    wrong = _wheel(tmp_path, b"x", member="facenet_pytorch/data/rnet.pt")
    assert provenance.main(["onet", str(wrong)]) == 2
    assert "no member" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no wheel source"):
        provenance.check_wheel("gap", wrong)
    notzip = tmp_path / "plain.whl"
    notzip.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="zip"):
        provenance.check_wheel("onet", notzip)


def test_provenance_restore_repairs_a_damaged_file(tmp_path, capsys):
    wdir = _copy_weights(tmp_path)
    (wdir / "onet.pt").write_bytes(b"damaged")
    with pytest.raises(WeightsError):
        load_model("onet", weights_dir=wdir)
    wheel = _wheel(tmp_path, (WEIGHTS_DIR / "onet.pt").read_bytes())
    assert provenance.main(["onet", str(wheel), "--restore", "--weights", str(wdir)]) == 0
    assert "restored" in capsys.readouterr().out
    assert models.sha256_file(wdir / "onet.pt") == ONET_SHA256
    assert isinstance(load_model("onet", weights_dir=wdir), ONet)


# --------------------------------------------------------------------------- architecture


def test_layer_names_and_shapes(onet, x):
    names = [n for n, _ in onet.named_children()]
    assert names == ["norm", "conv1", "prelu1", "pool1", "conv2", "prelu2", "pool2", "conv3",
                     "prelu3", "pool3", "conv4", "prelu4", "flatten", "dense5", "prelu5",
                     "dense6_1", "dense6_2", "dense6_3"]
    for name in ("pool1", "pool2", "pool3"):
        assert getattr(onet, name).ceil_mode
    shapes = {n: tuple(a.shape[1:]) for n, a in _record(onet, x, names[1:15]).items()}
    assert shapes["prelu1"] == (32, 46, 46) and shapes["pool1"] == (32, 23, 23)
    assert shapes["prelu2"] == (64, 21, 21) and shapes["pool2"] == (64, 10, 10)
    assert shapes["prelu3"] == (64, 8, 8) and shapes["pool3"] == (64, 4, 4)
    assert shapes["prelu4"] == (128, 3, 3) and shapes["flatten"] == (1152,)
    assert shapes["prelu5"] == (256,)
    for mod in onet.modules():
        assert not getattr(mod, "inplace", False), mod


def test_normalisation_inside_the_model(onet):
    grey = torch.full((1, 3, 4, 4), 0.5)
    assert torch.equal(onet.norm(grey), torch.zeros_like(grey))
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(onet.norm(x), (255 * x - 127.5) / 128, atol=1e-6)


def test_flatten_is_width_height_channel_and_matters(onet, x):
    a = torch.arange(2 * 4 * 3 * 5, dtype=torch.float32).reshape(2, 4, 3, 5)  # (N, C, H, W)
    flat = onet.flatten(a)
    c, h, w = 2, 1, 3
    assert flat[1, w * (3 * 4) + h * 4 + c] == a[1, c, h, w]
    # the same weights with the usual (C, H, W) order give other outputs
    with torch.no_grad():
        ref = onet(x)
        plain = onet.with_head("face")
        plain.flatten = nn.Flatten()
        assert not torch.allclose(plain(x), ref, atol=1e-3)


def test_prelu_activations_are_signed(onet):
    # PReLU(z) = max(0, z) + a min(0, z): negative where a > 0 and z < 0. On the two portrait
    # faces every PReLU layer has negative activations (on the 200 LFW images the negative
    # fractions of prelu1..5 are 0.30, 0.43, 0.58, 0.07, 0.14)
    from camlib.faces import face_photos

    acts = _record(onet, face_photos().images, [f"prelu{i}" for i in range(1, 6)])
    for name, a in acts.items():
        assert bool((a < 0).any()), f"{name} has no negative activation"
    # slopes of both signs; prelu4's are mostly negative (V-shaped channels, documented)
    slopes = {i: getattr(onet, f"prelu{i}").weight for i in range(1, 6)}
    assert all(bool((s > 0).any()) and bool((s < 0).any()) for s in slopes.values())
    assert int((slopes[4] < 0).sum()) == 106 and slopes[4].numel() == 128
    z = torch.linspace(-2, 2, 9).reshape(1, 1, 9, 1).expand(1, 32, 9, 1)
    a = slopes[1].reshape(1, 32, 1, 1)
    expected = z.clamp(min=0) + a * z.clamp(max=0)
    with torch.no_grad():
        assert torch.allclose(onet.prelu1(z), expected, atol=1e-6)


# --------------------------------------------------------------------------- heads


def test_three_heads_share_one_trunk(x):
    heads = {h: load_model("onet", head=h) for h in ONET_HEADS}
    states = [m.state_dict() for m in heads.values()]
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]) and torch.equal(states[0][k], states[2][k])
    with torch.no_grad():
        trunk = heads["face"].trunk(x)
        out = heads["face"].outputs(x)
        for h, m in heads.items():
            assert torch.equal(m.trunk(x), trunk)
        assert torch.equal(heads["face"](x), out.face)
        assert torch.equal(heads["box"](x), out.box)
        assert torch.equal(heads["landmarks"](x), out.landmarks)
        assert torch.equal(out.face, heads["face"].dense6_1(trunk))
        assert torch.equal(out.landmarks, heads["landmarks"].dense6_3(trunk))
    assert out.face.shape == (5, 2) and out.box.shape == (5, 4) and out.landmarks.shape == (5, 10)
    assert torch.allclose(out.face_probability, torch.softmax(out.face, 1)[:, 1])
    assert torch.allclose(out.face_probability, torch.sigmoid(out.face[:, 1] - out.face[:, 0]))
    assert torch.equal(out.landmark_pixels, landmarks_to_pixels(out.landmarks))


def test_head_attributes(onet):
    face = onet
    marks = onet.with_head("landmarks")
    box = onet.with_head("box")
    assert face.output_names == ("non_face", "face") and face.output_kind == "classification"
    assert box.output_names == ("left_shift", "top_shift", "right_shift", "bottom_shift")
    assert box.output_kind == "regression" and marks.output_kind == "regression"
    assert marks.output_names == (
        "left_eye_x", "right_eye_x", "nose_x", "mouth_left_x", "mouth_right_x",
        "left_eye_y", "right_eye_y", "nose_y", "mouth_left_y", "mouth_right_y")
    assert ONET_LANDMARKS == ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    for h in ONET_HEADS:
        m = onet.with_head(h)
        assert m.head == h and m.output_names == ONET_OUTPUT_NAMES[h]
        assert m(torch.rand(1, 3, 48, 48)).shape == (1, len(m.output_names))
        assert f"head={h!r}" in repr(m)
    # with_head shares the layers themselves; load_model gives independent copies
    assert marks.conv3 is face.conv3 and marks.dense6_3 is face.dense6_3
    assert not marks.training
    with pytest.raises(AttributeError):
        face.head = "box"  # the head is fixed per object; use with_head


def test_head_errors():
    with pytest.raises(ValueError, match="landmarks"):
        load_model("onet", head="eyes")
    with pytest.raises(ValueError, match="landmarks"):
        ONet(head="logits")
    with pytest.raises(ValueError, match="only to 'onet'"):
        load_model("gap", head="face")
    with pytest.raises(ValueError, match="onet"):
        load_model("mtcnn")
    assert isinstance(models.build_model("onet", head="box"), ONet)


def test_landmark_pixel_conversion():
    torch.manual_seed(1)
    y = torch.rand(3, 10)
    p = landmarks_to_pixels(y)
    assert p.shape == (3, 5, 2)
    assert torch.allclose(p[..., 0], 48 * y[:, :5] - 0.5)
    assert torch.allclose(p[..., 1], 48 * y[:, 5:] - 0.5)
    assert torch.allclose(pixels_to_landmarks(p), y, atol=1e-6)
    # the crop's edges: fraction 0 is the left edge of pixel 0, fraction 1 the right edge of 47
    edges = landmarks_to_pixels(torch.tensor([[0.0] * 5 + [1.0] * 5]))
    assert torch.allclose(edges[0, :, 0], torch.full((5,), -0.5))
    assert torch.allclose(edges[0, :, 1], torch.full((5,), 47.5))
    with pytest.raises(ValueError, match=r"\(N, 10\)"):
        landmarks_to_pixels(torch.rand(3, 4))
    with pytest.raises(ValueError, match=r"\(N, 5, 2\)"):
        pixels_to_landmarks(torch.rand(3, 10))


# --------------------------------------------------------------------------- wrong input


@pytest.mark.parametrize("shape,message", [
    ((2, 1, 48, 48), "3 channels"),
    ((2, 3, 25, 25), "48 x 48"),
    ((2, 48, 48, 3), "channels-last"),
    ((3, 48, 48), "unsqueeze"),
    ((2, 3, 64, 64), "48 x 48"),
])
def test_wrong_input_gets_a_clear_error(onet, shape, message):
    with pytest.raises(ValueError, match=message) as info:
        onet(torch.rand(*shape))
    assert "camlib.faces.onet_input" in str(info.value)


def test_non_tensor_input_gets_a_clear_error(onet):
    with pytest.raises(TypeError, match="onet_input"):
        onet([[0.0]])


def test_gradients_reach_the_input():
    # the model is differentiable end to end, as every attribution method needs
    model = load_model("onet", head="landmarks")
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    model(x)[:, 0].sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    assert float(x.grad.abs().sum()) > 0
