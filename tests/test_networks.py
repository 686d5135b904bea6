"""Networks and checkpoint loading: official weights, pysot key layouts, and clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
from shared_paths import DARKLIGHTER_PTH, NANOTRACK_PTH, SEQUENCES, SHARED

from mlkd_model.nets.build import build_darklighter, build_tracker
from mlkd_model.nets.checkpoint import CheckpointError, read_checkpoint
from mlkd_model.tracker import get_subwindow, to_blob

# The key names and shapes pysot's siamrpn_alex_dwxcorr checkpoints carry (AlexNetLegacy + DepthwiseRPN),
# written out here independently of the network code so a renamed module is caught.
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def pysot_alex_state() -> dict[str, torch.Tensor]:
    shapes: dict[str, tuple[int, ...]] = {}
    convs = {0: (96, 3, 11, 11), 4: (256, 96, 5, 5), 8: (384, 256, 3, 3), 11: (384, 384, 3, 3), 14: (256, 384, 3, 3)}
    for i, shape in convs.items():
        shapes[f"backbone.features.{i}.weight"] = shape
        shapes[f"backbone.features.{i}.bias"] = (shape[0],)
        for name in _BN:
            shapes[f"backbone.features.{i + 1}.{name}"] = () if name == "num_batches_tracked" else (shape[0],)
    for branch, out in (("cls", 10), ("loc", 20)):
        for part in ("conv_kernel", "conv_search"):
            shapes[f"rpn_head.{branch}.{part}.0.weight"] = (256, 256, 3, 3)
            for name in _BN:
                shapes[f"rpn_head.{branch}.{part}.1.{name}"] = () if name == "num_batches_tracked" else (256,)
        shapes[f"rpn_head.{branch}.head.0.weight"] = (256, 256, 1, 1)
        for name in _BN:
            shapes[f"rpn_head.{branch}.head.1.{name}"] = () if name == "num_batches_tracked" else (256,)
        shapes[f"rpn_head.{branch}.head.3.weight"] = (out, 256, 1, 1)
        shapes[f"rpn_head.{branch}.head.3.bias"] = (out,)
    gen = torch.Generator().manual_seed(0)
    return {
        k: (torch.tensor(7) if not s else torch.randn(s, generator=gen).abs() * 0.01 + (1 if "var" in k else 0))
        for k, s in shapes.items()
    }


def real_crops(size_z: int = 127, size_x: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """A template and a search crop from frames 1 and 10 of otb_Crossing, as the tracker makes them."""
    seq = SEQUENCES / "fixtures" / "otb_Crossing"
    box = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[0]
    f1, f10 = (cv2.imread(str(seq / "img" / f"{i:06d}.jpg")) for i in (1, 10))
    center = np.array([box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2])
    s_z = np.sqrt((box[2] + box[2:].sum() / 2) * (box[3] + box[2:].sum() / 2))
    avg = f1.mean(axis=(0, 1))
    z = to_blob(get_subwindow(f1, center, size_z, round(s_z), avg), "bgr")
    x = to_blob(get_subwindow(f10, center, size_x, round(s_z * size_x / size_z), avg), "bgr")
    return z, x


def test_nanotrack_matches_official_onnx_release(shared):
    """Our NanoTrack v2 with nanotrackv2.pth reproduces the authors' own ONNX export on real crops."""
    model = build_tracker("nanotrack", NANOTRACK_PTH)
    z, x = real_crops()
    backbone = ort.InferenceSession(str(SHARED / "weights/nanotrack_v2/nanotrack_backbone_sim.onnx"))
    head = ort.InferenceSession(str(SHARED / "weights/nanotrack_v2/nanotrack_head_sim.onnx"))
    with torch.no_grad():
        zf = model.backbone(torch.from_numpy(z))
        xf = model.backbone(torch.from_numpy(x))
        out = model.ban_head(zf, xf)
    (xf_ref,) = backbone.run(None, {"input": x})
    cls_ref, loc_ref = head.run(None, {"input1": zf.numpy(), "input2": xf_ref})
    np.testing.assert_allclose(xf.numpy(), xf_ref, atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(out.cls.numpy(), cls_ref, atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(out.loc.numpy(), loc_ref, atol=1e-3, rtol=1e-4)
    assert out.corr.shape == (1, 64, 16, 16)


def test_siamrpn_shapes_follow_pysot():
    model = build_tracker("siamrpn_alex")
    with torch.no_grad():
        train = model(torch.zeros(2, 3, 127, 127), torch.zeros(2, 3, 255, 255))
        track = model(torch.zeros(1, 3, 127, 127), torch.zeros(1, 3, 287, 287))
    assert train.cls.shape == (2, 10, 17, 17) and train.loc.shape == (2, 20, 17, 17)
    assert train.corr.shape == (2, 256, 17, 17)
    assert track.cls.shape == (1, 10, 21, 21)


def test_pysot_and_official_mlkd_layouts_load(tmp_path):
    state = pysot_alex_state()
    plain = tmp_path / "pysot.pth"
    torch.save({"state_dict": state, "epoch": 20}, plain)
    mlkd = tmp_path / "mlkd_ddp.pth"  # the official trainer saves DDP-wrapped models
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, mlkd)
    for path in (plain, mlkd):
        model = build_tracker("siamrpn_alex", path)
        assert torch.equal(model.rpn_head.loc.head[3].bias, state["rpn_head.loc.head.3.bias"])


def test_wrong_siamrpn_checkpoint_names_the_keys(tmp_path):
    state = pysot_alex_state()
    state["rpn_head.cls.head.3.weights"] = state.pop("rpn_head.cls.head.3.weight")  # typo'd key
    state["backbone.features.0.weight"] = torch.zeros(64, 3, 11, 11)  # wrong width
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_tracker("siamrpn_alex", path)
    msg = str(err.value)
    assert str(path) in msg
    assert "missing keys (1): rpn_head.cls.head.3.weight" in msg
    assert "unexpected keys (1): rpn_head.cls.head.3.weights" in msg
    assert "backbone.features.0.weight: checkpoint (64, 3, 11, 11) vs network (96, 3, 11, 11)" in msg


def test_family_mismatch_is_an_error(shared):
    with pytest.raises(CheckpointError, match="does not fit SiamRPNAlex"):
        build_tracker("siamrpn_alex", NANOTRACK_PTH)


def test_corrupt_and_missing_checkpoints(tmp_path, shared):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(NANOTRACK_PTH.read_bytes()[:50_000])
    with pytest.raises(CheckpointError, match=f"{truncated} is corrupt"):
        read_checkpoint(truncated)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth is corrupt"):
        build_tracker("nanotrack", garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        build_tracker("nanotrack", tmp_path / "absent.pth")


def test_checkpoint_with_code_is_refused(tmp_path):
    """weights_only=True: a pickle that would run code on load is rejected, not executed."""
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": print}, path)
    with pytest.raises(CheckpointError, match="corrupt or not a torch file"):
        read_checkpoint(path)


def test_darklighter_brightens_real_night_frame(shared):
    enhancer = build_darklighter(DARKLIGHTER_PTH)
    frame = cv2.imread(str(SHARED / "data/night/uavdark135_person11/00001.jpg"))
    rgb = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out = enhancer(rgb)
    assert torch.isfinite(out).all()
    assert out.mean() > rgb.mean() * 1.5, (float(rgb.mean()), float(out.mean()))


def test_pixelwise_correlation_gradient_at_batch_one():
    """Finite differences agree with autograd through BatchNorm + pixel-wise xcorr with one sample."""
    from mlkd_model.nets.common import xcorr_pixelwise

    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(8).double().eval()
    bn.running_var.uniform_(0.5, 2)
    search = torch.randn(1, 8, 5, 5, dtype=torch.float64)
    template = torch.randn(1, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: xcorr_pixelwise(search, bn(z)).square().sum(), (template,))
