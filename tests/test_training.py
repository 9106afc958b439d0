"""camlib.training: BatchNorm folding, determinism, the regenerate command, reproducibility.

The slow tests retrain the bundled models from scratch with the recorded seed (as
``python -m camlib.training`` does) and require the held-out accuracy recorded in
``weights.json`` to be reproduced within one percentage point.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from camlib import models, training
from camlib.training import TrainConfig, accuracy, fold_batchnorm, train_model, with_batchnorm

TINY = TrainConfig(n_train=48, epochs=1, batch_size=16)


@pytest.mark.parametrize("name", ["gap", "fc"])
def test_fold_batchnorm_is_exact_in_eval_mode(name):
    torch.manual_seed(0)
    bn_model = with_batchnorm(models.build_model(name))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in models.build_model(name).modules())
    # give the BatchNorm layers non-trivial statistics and affine parameters
    for m in bn_model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    bn_model.eval()
    plain = fold_batchnorm(bn_model, models.build_model(name))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        ref, out = bn_model(x), plain(x)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    # the folded model keeps the plain layer names that the course uses ("features.3", ...)
    assert set(plain.state_dict()) == set(models.build_model(name).state_dict())


def test_accuracy_closed_form():
    class Fixed(nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 4).float()

    x = torch.zeros(10, 3, 2, 2)
    x[:, 0, 0, 0] = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1]).float()
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 3])  # last two wrong
    assert accuracy(Fixed(), x, y, batch_size=3) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        accuracy(Fixed(), x, y[:5])


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_training_is_deterministic_and_restores_global_state(name):
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    a, rec_a = train_model(name, TINY)
    b, _ = train_model(name, TINY)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    c, _ = train_model(name, TrainConfig(n_train=48, epochs=1, batch_size=16, seed=1))
    assert not torch.equal(a.fc.weight if name != "fc" else a.head[1].weight,
                           c.fc.weight if name != "fc" else c.head[1].weight)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det
    assert not a.training and rec_a["n_train"] == 48 and rec_a["train_seconds"] >= 0
    assert type(a) is type(models.build_model(name))


def test_regenerate_writes_loadable_weights(tmp_path):
    info = training.regenerate(("gap",), out_dir=tmp_path, verbose=False,
                               configs={"gap": TINY})
    entry = json.loads((tmp_path / "weights.json").read_text())["gap"]
    assert entry == info["gap"]
    assert entry["sha256"] == models.sha256_file(tmp_path / "gap.pt")
    model = models.load_model("gap", weights_dir=tmp_path)
    assert not model.training
    assert 0.0 <= entry["accuracy"]["test"] <= 1.0


def test_unknown_model_name():
    with pytest.raises(ValueError, match="gap"):
        train_model("vgg")


@pytest.mark.slow
@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_retraining_reproduces_recorded_accuracy(name, tmp_path, capsys):
    recorded = models.weights_info()[name]
    training.main(["--only", name, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"{name}:" in out and "training" in out
    fresh = json.loads((tmp_path / "weights.json").read_text())[name]
    for key, acc in recorded["accuracy"].items():
        assert abs(fresh["accuracy"][key] - acc) <= 0.01, (key, fresh["accuracy"][key], acc)
