"""The tracking loop: agreement with OpenCV's independent NanoTrack, backends, colour orders, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shared_paths import SEQUENCES, WEIGHTS

from mlkd_model.families.nanotrack import generate_points
from mlkd_model.families.siamrpn_alex import generate_anchors
from mlkd_model.frames import BoxError, FrameError
from mlkd_model.load import load_tracker
from mlkd_model.params import default_params
from mlkd_model.tracker import decode, get_subwindow, padded_size, to_blob
from mlkd_training.opencv_nano import OpenCVNano

CROSSING = SEQUENCES / "fixtures" / "otb_Crossing"


def frames(seq, n=None):
    paths = sorted((seq / "img").glob("*.jpg"))[:n]
    return [cv2.imread(str(p)) for p in paths]


def iou(a, b) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


# OpenCV's TrackerNano feeds RGB and has its own hyper-parameters; those are settings, so ours is set alike.
OPENCV_SETTINGS = {"input_order": "rgb", "penalty_k": 0.055, "window_influence": 0.455, "lr": 0.37}


class OpenCVNanoLoop:
    """OpenCV's TrackerNano loop arithmetic (tracker_nano.cpp) assembled from this project's own parts.

    Crops come from our `get_subwindow` (context crop, mean padding), blobs from `to_blob` (channel order),
    outputs from our ONNX backend, candidates from our point grid and `decode` (anchor-free ltrb). Only the
    arithmetic in which OpenCV's loop deliberately or accidentally departs from NanoTrack's reference loop is
    OpenCV's here: centre x + w/2, integer crop sizes, a search region of 2x (255/127 in integer division),
    the frame mean as padding, the square root of the cosine window, the scale penalty against the target
    *position* instead of its size, and integer output boxes.
    """

    def __init__(self) -> None:
        self.backend = load_tracker().backend
        self.params = self.backend.params.replace(**OPENCV_SETTINGS)
        self.points = generate_points(self.params)
        n = self.params.score_size
        self.window = np.sqrt(np.outer(np.hanning(n), np.hanning(n))).ravel()

    def _crop(self, image, size: int, out: int) -> np.ndarray:
        # OpenCV's crop starts at int(pos) - (size + 1) // 2; express that as get_subwindow's centre.
        c = (size + 1) // 2
        center = np.floor(self.pos) - c + (size + 1) / 2 - 0.5
        return to_blob(get_subwindow(image, center, out, size, np.array(cv2.mean(image)[:3])), "rgb")

    def init(self, image, box) -> None:
        x, y, w, h = box
        self.pos, self.size = np.array([x + w / 2, y + h / 2]), np.array([w, h], float)
        s = w + h
        self.backend.set_template(self._crop(image, int(np.sqrt((w + s / 2) * (h + s / 2))), 127))

    def track(self, image) -> tuple[tuple[int, int, int, int], float]:
        p, s = self.params, int(self.size.sum())
        s_z = float(np.sqrt((self.size[0] + s / 2) * (self.size[1] + s / 2)))
        scale_z = p.exemplar_size / s_z
        score, boxes = decode(p, *self.backend.search(self._crop(image, int(s_z * 2), 255)), self.points)
        target = self.size * scale_z
        scale_change = np.maximum(r := padded_size(boxes[2], boxes[3]) / padded_size(*self.pos), 1 / r)
        ratio_change = np.maximum(q := (target[0] / target[1]) / (boxes[2] / boxes[3]), 1 / q)
        penalty = np.exp(-(ratio_change * scale_change - 1) * p.penalty_k)
        best = int(np.argmax(penalty * score * (1 - p.window_influence) + self.window * p.window_influence))
        lr = penalty[best] * score[best] * p.lr
        height, width = image.shape[:2]
        cx, cy = np.clip(self.pos + boxes[:2, best] / scale_z, 0, [width, height])
        w, h = np.clip(boxes[2:, best] / scale_z * lr + (1 - lr) * self.size, 10, [width, height])
        self.pos, self.size = np.array([cx, cy]), np.array([w, h])
        return (int(cx - w / 2), int(cy - h / 2), int(w), int(h)), float(score[best])


def run_against_opencv(tracker, sequence) -> float:
    """Mean IoU between `tracker` and cv2.TrackerNano, both free-running over the whole sequence."""
    seq = SEQUENCES / sequence
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
    reference = OpenCVNano(
        WEIGHTS / "nanotrack_v2/nanotrack_backbone_sim.onnx", WEIGHTS / "nanotrack_v2/nanotrack_head_sim.onnx"
    )
    images = frames(seq)
    box0 = tuple(round(v) for v in gt[0])
    reference.init(images[0], box0)
    tracker.init(images[0], box0)
    ious = []
    for image in images[1:]:
        box, _ = tracker.track(image)
        ref_box, _ = reference.track(image)
        ious.append(iou(tuple(int(v) for v in box), ref_box))  # OpenCV returns integer Rects: truncate alike
    return float(np.mean(ious))


@pytest.mark.parametrize("sequence", ["fixtures/otb_Crossing", "val/spbacf_Biker"])
def test_crop_network_and_decoding_match_opencv_tracker_nano(sequence, shared):
    """Our pre-processing, ONNX branches and decoding, in OpenCV's loop, reproduce cv2.TrackerNano frame by frame.

    An independent implementation with the same shared weights: a wrong channel order, crop geometry, padding,
    point grid or ltrb decoding would drift away within a few frames. Measured: mean IoU 1.000 and 0.9999.
    """
    assert run_against_opencv(OpenCVNanoLoop(), sequence) >= 0.99


@pytest.mark.parametrize("sequence", ["fixtures/otb_Crossing", "val/spbacf_Biker"])
def test_tracking_loop_agrees_with_opencv_tracker_nano(sequence, shared):
    """Our own loop (NanoTrack's reference arithmetic, OpenCV's settings) against cv2.TrackerNano, free-running.

    The two loops differ only in the arithmetic listed in OpenCVNanoLoop (which reproduces OpenCV exactly), and
    on these 16-20 px wide targets a pixel of integer rounding is worth several points of IoU. Measured: mean
    IoU 0.900 (Crossing) and 0.875 (Biker); the bound sits below with a margin.
    """
    ours = load_tracker()
    ours.params = ours.params.replace(**OPENCV_SETTINGS)
    assert run_against_opencv(ours, sequence) >= 0.85


def test_onnx_and_torch_backends_track_alike(shared):
    images = frames(CROSSING, 40)
    gt = np.loadtxt(CROSSING / "groundtruth_rect.txt", delimiter=",")
    results = {}
    for backend in ("onnx", "torch"):
        tracker = load_tracker(backend=backend)
        tracker.init(images[0], gt[0])
        results[backend] = [tracker.track(im)[0] for im in images[1:]]
    for a, b in zip(results["onnx"], results["torch"], strict=True):
        assert np.allclose(a, b, atol=0.05), (a, b)


def test_colour_orders_are_explicit(shared):
    images = frames(CROSSING, 15)
    box = np.loadtxt(CROSSING / "groundtruth_rect.txt", delimiter=",")[0]
    bgr, rgb = load_tracker(), load_tracker()
    bgr.init(images[0], box)
    rgb.init(images[0][:, :, ::-1].copy(), box, color="rgb")
    for im in images[1:]:
        assert bgr.track(im) == rgb.track(np.ascontiguousarray(im[:, :, ::-1]), color="rgb")
    gray = load_tracker()
    gray.init(cv2.cvtColor(images[0], cv2.COLOR_BGR2GRAY), box, color="gray")
    (x, y, w, h), score = gray.track(cv2.cvtColor(images[1], cv2.COLOR_BGR2GRAY), color="gray")
    assert iou((x, y, w, h), box) > 0.5 and 0 <= score <= 1


def test_bad_frames_and_boxes_are_specific_errors(shared):
    tracker = load_tracker()
    frame = frames(CROSSING, 1)[0]
    h, w = frame.shape[:2]
    with pytest.raises(RuntimeError, match="before init"):
        tracker.track(frame)
    with pytest.raises(FrameError, match="dtype must be uint8"):
        tracker.init(frame.astype(np.float32), (10, 10, 20, 20))
    with pytest.raises(FrameError, match="must be HxWx3"):
        tracker.init(frame[:, :, 0], (10, 10, 20, 20))
    with pytest.raises(FrameError, match="a gray frame must be HxW"):
        tracker.init(frame, (10, 10, 20, 20), color="gray")
    with pytest.raises(FrameError, match="unknown colour order 'yuv'"):
        tracker.init(frame, (10, 10, 20, 20), color="yuv")
    with pytest.raises(BoxError, match="outside the 360x240 frame"):
        tracker.init(frame, (w + 5, 10, 20, 20))
    with pytest.raises(BoxError, match="positive width and height"):
        tracker.init(frame, (10, 10, 0, 20))
    with pytest.raises(BoxError, match="NaN"):
        tracker.init(frame, (10, float("nan"), 20, 20))
    with pytest.raises(BoxError, match="4 numbers"):
        tracker.init(frame, (10, 10, 20))
    tracker.init(frame, (10, 10, 20, 20))
    with pytest.raises(FrameError, match="must be HxWx3"):
        tracker.track(np.zeros((h, w, 4), np.uint8))


def test_target_at_the_border_is_padded_with_the_mean():
    image = np.full((100, 100, 3), 200, np.uint8)
    patch = get_subwindow(image, np.array([0.0, 0.0]), 20, 20, np.array([10.0, 20.0, 30.0]))
    assert patch.shape == (20, 20, 3)
    assert (patch[0, 0] == [10, 20, 30]).all() and (patch[-1, -1] == 200).all()
    outside = get_subwindow(image, np.array([500.0, 500.0]), 20, 20, np.array([1.0, 2.0, 3.0]))
    assert (outside == [1, 2, 3]).all()


def test_pysot_anchors_and_zero_deltas_decode_to_anchors():
    params = default_params("siamrpn_alex")
    anchors = generate_anchors(params)
    assert anchors.shape == (5 * 21 * 21, 4)
    # pysot: base 8x8, ratio r -> w = int(sqrt(64 / r)), h = int(w * r), times scale 8
    assert [tuple(anchors[k * 441, 2:]) for k in range(5)] == [(104, 32), (88, 40), (64, 64), (40, 80), (32, 96)]
    assert tuple(anchors[0, :2]) == (-80, -80) and tuple(anchors[440, :2]) == (80, 80)
    cls = np.zeros((1, 10, 21, 21), np.float32)
    score, boxes = decode(params, cls, np.zeros((1, 20, 21, 21), np.float32), anchors)
    assert np.allclose(score, 0.5) and np.allclose(boxes.T, anchors)
