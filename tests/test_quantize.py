"""`mlkd quantize`: an INT8 model directory that the normal loader verifies and tracks with."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from shared_paths import SEQUENCES

from mlkd_model.cli import main
from mlkd_model.datasets import load_dataset
from mlkd_model.default_model import MODEL_DIR
from mlkd_model.load import load_tracker
from mlkd_model.manifest import ModelDirError, read_model_dir
from mlkd_training.quantize import TRAIN_SPLIT, QuantizeError, quantize_model

TRAIN = SEQUENCES / "train"
CROSSING = SEQUENCES / "fixtures" / "otb_Crossing"


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory, shared):
    out = tmp_path_factory.mktemp("int8")
    assert main(["quantize", str(MODEL_DIR), "--out", str(out), "--data", str(TRAIN), "--crops", "24"]) == 0
    return out


def test_int8_directory_loads_through_load_tracker_and_tracks(int8_dir):
    model = read_model_dir(int8_dir)  # every file against its sha256
    assert set(model.files) == {"template", "search"}
    graph = onnx.load(str(int8_dir / "search.onnx")).graph
    ops = {n.op_type for n in graph.node}
    int8_weights = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops and len(int8_weights) > 20
    info = model.info["quantization"]
    assert info["calibration_crops"] == 24 and info["calibration_data"] == str(TRAIN)
    assert set(info["calibration_sequences"]) == {d.name for d in TRAIN.iterdir() if d.is_dir()}

    # It tracks: measured mean IoU with the ground truth 0.68 (float32 0.76) on this 120-frame fixture; a
    # calibration that clipped the activations or a wrong channel order loses the target within frames.
    images = [cv2.imread(str(p)) for p in sorted((CROSSING / "img").glob("*.jpg"))]
    gt = np.loadtxt(CROSSING / "groundtruth_rect.txt", delimiter=",")
    tracker = load_tracker(int8_dir)
    tracker.init(images[0], gt[0])
    ious = []
    for image, (x, y, w, h) in zip(images[1:], gt[1:], strict=True):
        (a, b, c, d), score = tracker.track(image)
        iw, ih = max(0.0, min(a + c, x + w) - max(a, x)), max(0.0, min(b + d, y + h) - max(b, y))
        ious.append(iw * ih / (c * d + w * h - iw * ih))
        assert 0 <= score <= 1
    assert np.mean(ious) > 0.6


def test_int8_directory_is_verified_like_any_model_dir(int8_dir, tmp_path):
    altered = tmp_path / "altered"
    altered.mkdir()
    for f in int8_dir.iterdir():
        (altered / f.name).write_bytes(f.read_bytes())
    data = bytearray((altered / "search.onnx").read_bytes())
    data[-10] ^= 0xFF
    (altered / "search.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match="does not match its sha256"):
        load_tracker(altered)
    manifest = json.loads((altered / "manifest.json").read_text())
    assert manifest["quantization"]["branches"]["template"] == "float32"


def test_validation_data_is_refused_for_calibration(tmp_path, shared):
    with pytest.raises(QuantizeError, match="'val' split"):
        quantize_model(MODEL_DIR, tmp_path / "q", SEQUENCES / "val", crops=2)
    with pytest.raises(QuantizeError, match="'val' split"):
        quantize_model(MODEL_DIR, tmp_path / "q", SEQUENCES / "val" / "uav123_car14", crops=2)
    assert not (tmp_path / "q" / "manifest.json").exists()
    assert main(["quantize", str(MODEL_DIR), "--out", str(tmp_path / "q"), "--data", str(SEQUENCES / "val")]) == 2
    val_part = TRAIN_SPLIT.replace("#train", "#val")
    with pytest.raises(QuantizeError, match="'val' part"):
        quantize_model(MODEL_DIR, tmp_path / "q", val_part, crops=2)


def test_default_calibration_reads_no_validation_sequence(shared):
    # The shared folder named "train" holds three of the split's validation sequences; the default does not.
    calibration = {s.name for s in load_dataset(TRAIN_SPLIT)}
    validation = {s.name for s in load_dataset(TRAIN_SPLIT.replace("#train", "#val"))}
    assert calibration and validation and not calibration & validation
