"""INT8 model directories by ONNX Runtime static quantisation, calibrated on training crops.

The search branch (run every frame) is quantised: weights per channel to int8, activations to uint8,
QDQ format, so ONNX Runtime's CPU provider fuses them into integer kernels. The template branch runs
once per track and stays float32, which also keeps the kernels it hands the search branch exact.

The weights use 7 of the 8 bits (|w| <= 64, ONNX Runtime's `reduce_range`) so that the model computes
the same on every x86-64 CPU. ONNX Runtime multiplies uint8 activations by int8 weights; with VNNI the
products are summed in int32, but on CPUs without it (AVX2, AVX-512 without VNNI) each pair of
neighbouring products is first summed in saturating int16 (`vpmaddubsw`). With 8-bit weights a pair
reaches 2 x 255 x 127 = 64770 and is clipped: measured under an emulated AVX2 CPU, mean IoU on
otb_Crossing fell from 0.68 to 0.28. With 7-bit weights a pair is at most 2 x 255 x 64 = 32640 < 32767,
so no pair can saturate and both paths compute the exact sums; `worst_pair_sum` checks the written graph.
Signed activations do not help: ONNX Runtime turns them back into uint8 on x86 (0.33 under emulation).

Calibration inputs are what the tracker feeds that branch: kernels of a template crop around a
ground-truth box, and a search crop of a later frame of the same sequence around its ground truth
(shifted and rescaled a little, as a tracker that is slightly off would crop it), half of the pairs
darkened by the night simulation. They come from the training split only: a folder named like the
validation split is refused, so the validation figures stay independent of the quantisation.
"""

from __future__ import annotations

import datetime
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mlkd_model.boxes import labelled_mask
from mlkd_model.datasets import Sequence, load_dataset, split_file
from mlkd_model.manifest import ModelDir, read_model_dir, sha256, write_manifest
from mlkd_model.params import TrackerParams
from mlkd_model.provenance import git_revision
from mlkd_model.tracker import get_subwindow, padded_size, to_blob
from mlkd_training.night import darken, frame_rng, sequence_params

log = logging.getLogger(__name__)

FORBIDDEN_SPLITS = ("val", "validation")
# The int16 that a non-VNNI x86 CPU sums each pair of uint8 x int8 products into, saturating.
INT16_MAX = 32767
UINT8_MAX = 255
# The default calibration data: the training part of the checked-in split (the shared folder named
# "train" also holds three of its validation sequences).
TRAIN_SPLIT = f"{Path(__file__).resolve().parent / 'splits' / 'night_v2.yaml'}#train"


class QuantizeError(ValueError):
    """Quantisation refused (validation data as calibration, a model directory without ONNX branches)."""


def calibration_pairs(
    sequences: list[Sequence], params: TrackerParams, n: int, seed: int, night_fraction: float = 0.5
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(template blob, search blob) pairs from random labelled frames, `night_fraction` of them darkened."""
    rng = np.random.default_rng(seed)
    labelled = [(s, np.flatnonzero(labelled_mask(s.boxes))) for s in sequences]
    labelled = [(s, idx) for s, idx in labelled if len(idx) >= 2]
    if not labelled:
        raise QuantizeError("no calibration sequence has two labelled frames")
    weights = np.array([len(idx) for _, idx in labelled], float)
    for k in range(n):
        seq, idx = labelled[rng.choice(len(labelled), p=weights / weights.sum())]
        j = int(rng.integers(1, len(idx)))
        i = int(idx[max(0, j - int(rng.integers(1, 60)))])  # template up to 60 labelled frames earlier
        j = int(idx[j])
        night = rng.random() < night_fraction
        night_params = sequence_params(seed + k, seq.name) if night else None

        def frame(t: int, night_params=night_params, seq=seq, k=k) -> np.ndarray:
            image = seq.image(t)
            return image if night_params is None else darken(image, night_params, frame_rng(seed + k, seq.name, t))

        z_image, x_image = frame(i), frame(j)
        avg = z_image.mean(axis=(0, 1))
        zx, zy, zw, zh = seq.boxes[i]
        s_z = float(padded_size(zw, zh))
        z = get_subwindow(z_image, (zx + (zw - 1) / 2, zy + (zh - 1) / 2), params.exemplar_size, round(s_z), avg)
        xx, xy, xw, xh = seq.boxes[j]
        scale = float(np.exp(rng.uniform(-0.15, 0.15)))  # a tracker's size estimate a little off
        s_x = float(padded_size(xw, xh)) * scale * params.instance_size / params.exemplar_size
        shift = rng.uniform(-0.1, 0.1, 2) * s_x  # and its centre
        center = (xx + (xw - 1) / 2 + shift[0], xy + (xh - 1) / 2 + shift[1])
        x = get_subwindow(x_image, center, params.instance_size, round(s_x), x_image.mean(axis=(0, 1)))
        swap = params.input_order  # crops are BGR: "rgb" swaps them for an RGB network
        yield to_blob(z, swap), to_blob(x, swap)


class _SearchFeeds:
    """onnxruntime.quantization CalibrationDataReader: kernels (float template branch) + search crop."""

    def __init__(self, model: ModelDir, pairs: Iterator[tuple[np.ndarray, np.ndarray]]) -> None:
        import onnxruntime as ort

        self.template = ort.InferenceSession(str(model.file("template")), providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.template.get_outputs()]
        self.pairs = pairs
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        pair = next(self.pairs, None)
        if pair is None:
            return None
        z, x = pair
        kernels = self.template.run(None, {"template": z})
        self.count += 1
        return {**dict(zip(self.names, kernels, strict=True)), "search": x}


def worst_pair_sum(model_path: str | Path) -> tuple[int, str]:
    """The largest |a1*w1 + a2*w2| that uint8 activations a and any two int8 weights w of one tensor of the
    graph can make, and that tensor's name: above INT16_MAX a CPU without VNNI would saturate it."""
    import onnx
    from onnx import numpy_helper

    worst, name = 0, ""
    for init in onnx.load(str(model_path)).graph.initializer:
        if init.data_type != onnx.TensorProto.INT8:
            continue
        w = np.abs(numpy_helper.to_array(init).astype(np.int64)).ravel()
        top = np.sort(w)[-2:]  # packing decides which weights pair up: bound it by the two largest
        bound = UINT8_MAX * int(top.sum() if len(top) == 2 else 2 * top.sum())
        if bound > worst:
            worst, name = bound, init.name
    return worst, name


def check_calibration_data(data: str | Path, sequences: list[Sequence]) -> None:
    """Refuse a validation split (or one of its sequences) as calibration data, naming the folder."""
    split = split_file(data)
    if split is not None:
        if split[1].lower() in (*FORBIDDEN_SPLITS, "final_check"):
            raise QuantizeError(
                f"calibration data {data} is the {split[1]!r} part of {split[0]}: use its training part"
            )
        return  # another part of a split file: the split keeps the validation sequences apart
    data = Path(data).resolve()
    folders = [data, data.parent]
    for seq in sequences:
        folders += [f for f in Path(seq.frames[0]).resolve().parents if f.is_relative_to(data)] if seq.frames else []
    for folder in folders:
        if folder.name.lower() in FORBIDDEN_SPLITS:
            raise QuantizeError(
                f"calibration data {data} is in the {folder.name!r} split ({folder}): use the training split"
            )


def quantize_model(
    model_dir: str | Path, out_dir: str | Path, data: str | Path = TRAIN_SPLIT, crops: int = 300, seed: int = 0
) -> Path:
    """Write `out_dir`: the float template branch, the INT8 search branch and a manifest saying how."""
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = read_model_dir(model_dir)
    for role in ("template", "search"):
        model.file(role)  # a ModelDirError naming the missing branch
    sequences = load_dataset(data)
    check_calibration_data(data, sequences)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reader = _SearchFeeds(model, calibration_pairs(sequences, model.params, crops, seed))
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "search_prepared.onnx"
        quant_pre_process(str(model.file("search")), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out_dir / "search.onnx"),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            reduce_range=True,  # 7-bit weights: the same sums with and without VNNI (module docstring)
            extra_options={"CalibMaxIntermediateOutputs": 64},
        )
    worst, tensor = worst_pair_sum(out_dir / "search.onnx")
    if worst > INT16_MAX:  # only if ONNX Runtime stopped honouring reduce_range
        raise QuantizeError(
            f"{out_dir / 'search.onnx'}: weights of {tensor} reach a uint8 x int8 pair sum of {worst} > {INT16_MAX}, "
            "which CPUs without VNNI saturate"
        )
    shutil.copyfile(model.file("template"), out_dir / "template.onnx")
    files = {"template": "template.onnx", "search": "search.onnx"}
    info = {
        key: model.info[key] for key in ("inputs", "outputs", "source_checkpoint", "source_sha256") if key in model.info
    }
    info["quantization"] = {
        "tool": f"onnxruntime {ort_version} quantization.quantize_static",
        "branches": {
            "search": "int8 (QDQ; weights int8 per channel in 7 bits, activations uint8, MinMax)",
            "template": "float32",
        },
        "format": "QDQ",
        "activations": "uint8",
        "weights": "int8, symmetric, per channel",
        "reduce_range": True,  # weights in [-64, 64]
        "worst_pair_sum": worst,  # <= 32767: CPUs with and without VNNI compute the same (no int16 saturation)
        "source_model": str(model.path),
        "source_search_sha256": sha256(model.file("search")),
        "calibration_data": str(data),
        "calibration_sequences": [s.name for s in sequences],
        "calibration_crops": reader.count,
        "night_fraction": 0.5,
        "seed": seed,
    }
    info["exported"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    info["exporter_revision"] = git_revision()
    info["notes"] = f"INT8 search branch of {model.path.name}"
    write_manifest(out_dir, model.params, files, info)
    log.info("INT8 model written to %s (%d calibration crops from %d sequences)", out_dir, reader.count, len(sequences))
    return out_dir
