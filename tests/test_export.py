"""ONNX export: each branch agrees with torch on real crops; the manifest describes and guards the model."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from shared_paths import DARKLIGHTER_PTH, NANOTRACK_PTH
from test_networks import pysot_alex_state, real_crops

from mlkd_model.default_model import MODEL_DIR
from mlkd_model.export import export_checkpoint
from mlkd_model.manifest import ModelDirError, read_model_dir, sha256
from mlkd_model.nets.build import build_teacher, build_tracker
from mlkd_model.onnx_backend import resolve_providers


@pytest.fixture(scope="module")
def nanotrack_dir(tmp_path_factory, shared):
    return export_checkpoint("nanotrack", NANOTRACK_PTH, tmp_path_factory.mktemp("nano"), DARKLIGHTER_PTH)


@pytest.fixture(scope="module")
def alex_dir(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("ckpt") / "alex.pth"
    torch.save(pysot_alex_state(), ckpt)
    return export_checkpoint("siamrpn_alex", ckpt, tmp_path_factory.mktemp("alex"))


def _compare_branches(model_dir, net, prefix, z, x):
    tmpl = ort.InferenceSession(str(model_dir / f"{prefix}template.onnx"))
    srch = ort.InferenceSession(str(model_dir / f"{prefix}search.onnx"))
    with torch.no_grad():
        kernels = net.template_kernels(torch.from_numpy(z))
        ref = net.search_with_kernels(kernels, torch.from_numpy(x))
    onnx_kernels = tmpl.run(None, {"template": z})
    for k_onnx, k_torch in zip(onnx_kernels, kernels, strict=True):
        scale = max(1.0, float(k_torch.abs().max()))
        assert np.abs(k_onnx - k_torch.numpy()).max() <= 1e-4 * scale
    feed = {f"kernel{i}": k for i, k in enumerate(onnx_kernels)}
    cls, loc = srch.run(["cls", "loc"], {**feed, "search": x})
    for got, want in ((cls, ref.cls), (loc, ref.loc)):
        scale = max(1.0, float(want.abs().max()))  # relative to the output's magnitude where it exceeds 1
        assert np.abs(got - want.numpy()).max() <= 1e-4 * scale


def test_nanotrack_and_teacher_onnx_match_torch(nanotrack_dir):
    z, x = real_crops()
    tracker = build_tracker("nanotrack", NANOTRACK_PTH)
    _compare_branches(nanotrack_dir, tracker, "", z, x)
    _compare_branches(nanotrack_dir, build_teacher(tracker, DARKLIGHTER_PTH), "teacher_", z, x)


def test_siamrpn_onnx_matches_torch(alex_dir):
    z, x = real_crops(127, 287)
    _compare_branches(alex_dir, build_tracker("siamrpn_alex", alex_dir / "tracker.pth"), "", z, x)


def test_manifest_describes_the_model(nanotrack_dir):
    model = read_model_dir(nanotrack_dir)
    assert model.params.family == "nanotrack" and model.params.instance_size == 255
    data = json.loads((nanotrack_dir / "manifest.json").read_text())
    assert data["source_checkpoint"] == str(NANOTRACK_PTH)
    assert len(data["source_sha256"]) == 64
    assert data["inputs"]["search"] == [1, 3, 255, 255]
    assert set(model.files) == {"template", "search", "weights", "teacher_template", "teacher_search", "enhancer"}


def test_altered_or_incomplete_model_dir_is_refused(tmp_path, nanotrack_dir):
    import shutil

    copy = shutil.copytree(nanotrack_dir, tmp_path / "m")
    with open(copy / "search.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelDirError, match="search.onnx does not match its sha256"):
        read_model_dir(copy)
    (copy / "search.onnx").unlink()
    with pytest.raises(ModelDirError, match="search file search.onnx is missing"):
        read_model_dir(copy)
    with pytest.raises(ModelDirError, match="does not exist"):
        read_model_dir(tmp_path / "nowhere")
    with pytest.raises(ModelDirError, match="no manifest.json"):
        read_model_dir(tmp_path)


def test_embedded_default_model_is_nanotrack_v2_export(shared):
    """The shipped model is this project's export of the shared NanoTrack v2 weights (and still verifies)."""
    model = read_model_dir(MODEL_DIR)
    assert model.params.family == "nanotrack"
    assert model.info["source_sha256"] == sha256(NANOTRACK_PTH)
    assert model.info["enhancer_sha256"] == sha256(DARKLIGHTER_PTH)
    assert (MODEL_DIR / "SOURCE.txt").is_file()


def test_provider_fallback_warns(caplog):
    with caplog.at_level("WARNING"):
        chosen = resolve_providers(["tensorrt", "cuda", "cpu"])
    assert chosen[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert chosen == ["CPUExecutionProvider"]
        assert "CUDAExecutionProvider is not available" in caplog.text
    with pytest.raises(ValueError, match="unknown execution provider 'gpu'"):
        resolve_providers(["gpu"])
