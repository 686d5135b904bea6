"""The tracking loop: agreement with OpenCV's independent NanoTrack, backends, colour orders, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shared_paths import SEQUENCES, WEIGHTS

from mlkd_model.frames import BoxError, FrameError
from mlkd_model.load import load_tracker
from mlkd_model.params import default_params
from mlkd_model.tracker import decode, generate_anchors, get_subwindow

CROSSING = SEQUENCES / "fixtures" / "otb_Crossing"


def frames(seq, n=None):
    paths = sorted((seq / "img").glob("*.jpg"))[:n]
    return [cv2.imread(str(p)) for p in paths]


def iou(a, b) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.mark.parametrize("sequence", ["fixtures/otb_Crossing", "val/spbacf_Biker"])
def test_agrees_with_opencv_tracker_nano(sequence, shared):
    """Same shared weights, two implementations of the NanoTrack loop, free-running over a whole sequence.

    OpenCV's TrackerNano feeds RGB and uses its own hyper-parameters (penalty 0.055, window 0.455, lr 0.37);
    those are settings, so ours is set alike. It returns integer Rects, so ours is truncated the same way
    for the comparison. Its remaining deviations from NanoTrack's reference loop are kept out of our code:
    the scale penalty is computed against the target *position* instead of its size, the search region is
    2x instead of 255/127x (integer division) and the cosine window is the square root of the reference's.
    Measured with those left in: mean IoU 0.90 (Crossing) and 0.87 (Biker); an exact emulation of OpenCV's
    loop on our ONNX branches reaches 1.000, and dropping only its scale-penalty line gives 0.887 on Biker,
    so the gap is OpenCV's deviation, not ours. The bound is set below the measured values with a margin.
    """
    seq = SEQUENCES / sequence
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
    params = cv2.TrackerNano_Params()
    params.backbone = str(WEIGHTS / "nanotrack_v2/nanotrack_backbone_sim.onnx")
    params.neckhead = str(WEIGHTS / "nanotrack_v2/nanotrack_head_sim.onnx")
    reference = cv2.TrackerNano_create(params)
    ours = load_tracker()
    ours.params = ours.params.replace(input_order="rgb", penalty_k=0.055, window_influence=0.455, lr=0.37)
    images = frames(seq)
    box0 = tuple(round(v) for v in gt[0])
    reference.init(images[0], box0)
    ours.init(images[0], box0)
    ious = []
    for image in images[1:]:
        box, _ = ours.track(image)
        _, ref_box = reference.update(image)
        ious.append(iou(tuple(int(v) for v in box), ref_box))
    assert np.mean(ious) >= 0.85, np.mean(ious)


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
