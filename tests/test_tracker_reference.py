"""The optimised tracking loop gives the boxes of the straightforward loop it replaced, to 1e-3 px.

`ReferenceTracker` is the loop as it was before the speed work (full-frame colour conversion, crop with
copyMakeBorder + resize into fresh arrays, a transposed blob, float64 softmax, decoding and penalties over
every candidate, nan_to_num). Both run free over whole sequences on the same ONNX backend, so one frame
that chose another candidate, or a crop one pixel off, would show as a drift far above the tolerance.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shared_paths import SEQUENCES

from mlkd_model.families.nanotrack import generate_points
from mlkd_model.families.siamrpn_alex import generate_anchors
from mlkd_model.frames import check_box, to_bgr
from mlkd_model.load import load_tracker

TOLERANCE_PX = 1e-3


def reference_subwindow(image, center, model_size, original_size, pad_value):
    size = max(round(original_size), 1)
    c = (size + 1) / 2
    x0 = int(np.floor(center[0] - c + 0.5))
    y0 = int(np.floor(center[1] - c + 0.5))
    x1, y1 = x0 + size, y0 + size
    h, w = image.shape[:2]
    left, top, right, bottom = max(0, -x0), max(0, -y0), max(0, x1 - w), max(0, y1 - h)
    if left or top or right or bottom:
        inner = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        if inner.size == 0:
            patch = np.empty((size, size, 3), np.uint8)
            patch[:] = pad_value
        else:
            patch = cv2.copyMakeBorder(
                inner, top, bottom, left, right, cv2.BORDER_CONSTANT, value=[float(v) for v in pad_value]
            )
    else:
        patch = image[y0:y1, x0:x1]
    if size != model_size:
        patch = cv2.resize(patch, (model_size, model_size))
    return patch


def reference_blob(patch, order):
    if order == "rgb":
        patch = patch[:, :, ::-1]
    return np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)


def reference_decode(params, cls, loc, prior):
    logits = cls.reshape(2, -1).astype(np.float64)
    logits = logits - logits.max(axis=0, keepdims=True)
    e = np.exp(logits)
    score = e[1] / e.sum(axis=0)
    delta = loc.reshape(4, -1).astype(np.float64)
    if params.family == "siamrpn_alex":
        boxes = np.empty_like(delta)
        boxes[0] = delta[0] * prior[:, 2] + prior[:, 0]
        boxes[1] = delta[1] * prior[:, 3] + prior[:, 1]
        boxes[2] = np.exp(delta[2]) * prior[:, 2]
        boxes[3] = np.exp(delta[3]) * prior[:, 3]
    else:
        x1, y1 = prior[:, 0] - delta[0], prior[:, 1] - delta[1]
        x2, y2 = prior[:, 0] + delta[2], prior[:, 1] + delta[3]
        boxes = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
    return score, boxes


def reference_padded_size(w, h):
    pad = (np.asarray(w) + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


class ReferenceTracker:
    def __init__(self, backend, params):
        self.backend, self.params = backend, params
        n = params.score_size
        window = np.outer(np.hanning(n), np.hanning(n)).ravel()
        if params.family == "siamrpn_alex":
            self.prior, self.window = generate_anchors(params), np.tile(window, params.anchor_num)
        else:
            self.prior, self.window = generate_points(params), window

    def _context_size(self):
        w = self.size[0] + self.params.context_amount * self.size.sum()
        h = self.size[1] + self.params.context_amount * self.size.sum()
        return float(np.sqrt(w * h))

    def init(self, frame, box, color="bgr"):
        image = to_bgr(frame, color)
        x, y, w, h = check_box(box, image.shape[1], image.shape[0])
        self.center, self.size = np.array([x + (w - 1) / 2, y + (h - 1) / 2]), np.array([w, h])
        self.channel_average = image.mean(axis=(0, 1))
        z = reference_subwindow(
            image, self.center, self.params.exemplar_size, round(self._context_size()), self.channel_average
        )
        self.backend.set_template(reference_blob(z, self.params.input_order))

    def track(self, frame, color="bgr"):
        p = self.params
        image = to_bgr(frame, color)
        s_z = self._context_size()
        scale_z = p.exemplar_size / s_z
        s_x = s_z * p.instance_size / p.exemplar_size
        x = reference_subwindow(image, self.center, p.instance_size, round(s_x), self.channel_average)
        cls, loc = self.backend.search(reference_blob(x, p.input_order))
        score, boxes = reference_decode(p, cls, loc, self.prior)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = reference_padded_size(boxes[2], boxes[3]) / reference_padded_size(*(self.size * scale_z))
            q = (self.size[0] / self.size[1]) / (boxes[2] / boxes[3])
            penalty = np.exp(-(np.maximum(q, 1 / q) * np.maximum(r, 1 / r) - 1) * p.penalty_k)
        penalty = np.nan_to_num(penalty, nan=0.0)
        pscore = penalty * score * (1 - p.window_influence) + self.window * p.window_influence
        best = int(np.argmax(pscore))
        box = boxes[:, best] / scale_z
        lr = penalty[best] * score[best] * p.lr
        cx, cy = box[0] + self.center[0], box[1] + self.center[1]
        w = self.size[0] * (1 - lr) + box[2] * lr
        h = self.size[1] * (1 - lr) + box[3] * lr
        height, width = image.shape[:2]
        cx, cy = float(np.clip(cx, 0, width)), float(np.clip(cy, 0, height))
        w, h = float(np.clip(w, 10, width)), float(np.clip(h, 10, height))
        self.center, self.size = np.array([cx, cy]), np.array([w, h])
        return (cx - w / 2, cy - h / 2, w, h), float(score[best])


def reference_for(tracker, model_dir=None) -> ReferenceTracker:
    """The reference loop on a backend of its own (its own template), with the tracker's parameters."""
    return ReferenceTracker(load_tracker(model_dir).backend, tracker.params)


def sequence(name, n=None):
    seq = SEQUENCES / name
    images = [cv2.imread(str(p)) for p in sorted((seq / "img").glob("*.jpg"))[:n]]
    return images, np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[0]


def max_box_difference(tracker, reference, images, box, convert=lambda im: im, color="bgr", resize=None):
    """Both trackers free-running over `images`; `tracker` sees them converted (colour order, size)."""
    if resize is not None:
        sx, sy = resize[0] / images[0].shape[1], resize[1] / images[0].shape[0]
        images = [cv2.resize(im, resize) for im in images]
        box = box * [sx, sy, sx, sy]
    tracker.init(convert(images[0]), box, color=color)
    reference.init(images[0], box)
    worst = 0.0
    for image in images[1:]:
        (b1, s1), (b2, s2) = tracker.track(convert(image), color=color), reference.track(image)
        worst = max(worst, float(np.abs(np.subtract(b1, b2)).max()), abs(s1 - s2))
    return worst


@pytest.mark.parametrize(
    "name", ["fixtures/otb_Crossing", "val/spbacf_Biker", "val/uav123_car14", "val/uav123_wakeboard4"]
)
def test_boxes_match_the_reference_loop(name, shared):
    tracker = load_tracker()
    images, box = sequence(name)
    assert max_box_difference(tracker, reference_for(tracker), images, box) < TOLERANCE_PX


@pytest.mark.parametrize(
    ("color", "convert"),
    [
        ("rgb", lambda im: np.ascontiguousarray(im[:, :, ::-1])),
        ("rgb", lambda im: im[:, :, ::-1]),  # a negative-stride view: crops are copied, not the frame
        ("gray", lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)),
    ],
)
def test_rgb_and_gray_frames_crop_without_converting_the_frame(color, convert, shared):
    """The loop crops rgb / gray frames as they come and orders channels on the crop; the boxes do not change."""
    tracker = load_tracker()
    images, box = sequence("fixtures/otb_Crossing", 60)
    if color == "gray":  # the reference sees what the tracker sees: gray, as three equal channels
        images = [cv2.cvtColor(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for im in images]
    assert max_box_difference(tracker, reference_for(tracker), images, box, convert, color) < TOLERANCE_PX


def test_rgb_network_and_1280x720_frames_match(shared):
    """A network trained on RGB (the crop's channels swapped in the blob) on frames the Anafi's size."""
    tracker = load_tracker()
    tracker.params = tracker.params.replace(input_order="rgb")
    images, box = sequence("val/uav123_wakeboard4", 80)
    assert max_box_difference(tracker, reference_for(tracker), images, box, resize=(1280, 720)) < TOLERANCE_PX


class CorruptedOutputs:
    """The real backend, with outputs that no trained network gives: logits that overflow float32's exp in
    some cells, and on every other frame negative sizes (NaN penalties: the float64 path) in others. Both
    loops see the same outputs."""

    def __init__(self, backend, seed: int) -> None:
        self.backend, self.params, self.rng = backend, backend.params, np.random.default_rng(seed)
        self.frames = 0

    def set_template(self, z_crop):
        self.backend.set_template(z_crop)

    def search(self, x_crop):
        cls, loc = (a.copy() for a in self.backend.search(x_crop))
        cells = self.rng.choice(loc.shape[2] * loc.shape[3], size=12, replace=False)
        rows, cols = np.unravel_index(cells, loc.shape[2:])
        self.frames += 1
        if self.frames % 2:
            loc[0, 0, rows[:6], cols[:6]] = -60.0  # left edge beyond the right one: width < 0
        cls[0, 0, rows[6:], cols[6:]] = -200.0  # exp(200) overflows float32
        return cls, loc


def test_degenerate_outputs_take_the_float64_path_and_still_match(shared):
    tracker = load_tracker()
    tracker.backend = CorruptedOutputs(tracker.backend, seed=3)
    reference_backend = CorruptedOutputs(load_tracker().backend, seed=3)
    images, box = sequence("fixtures/otb_Crossing", 60)
    reference = ReferenceTracker(reference_backend, tracker.params)
    assert max_box_difference(tracker, reference, images, box) < TOLERANCE_PX


@pytest.fixture(scope="module")
def alex_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from mlkd_model.export import export_model
    from mlkd_model.nets.build import build_tracker

    torch.manual_seed(0)  # random weights: the anchor decoding and its penalties are what is compared
    return export_model(build_tracker("siamrpn_alex"), tmp_path_factory.mktemp("alex"))


def test_anchor_family_matches_the_reference_loop(alex_dir, shared):
    tracker = load_tracker(alex_dir)
    images, box = sequence("fixtures/otb_Crossing", 25)
    assert max_box_difference(tracker, reference_for(tracker, alex_dir), images, box) < TOLERANCE_PX
