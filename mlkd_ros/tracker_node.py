"""ROS 2 tracker node: camera/image + tracker/init -> tracker/box, tracker/cle or tracker/offset, /diagnostics.

The node tracks in the image subscription's own callback, on the executor's one thread: no worker
thread, no hand-off and no lock on the way from a frame to its box. A slow model still never builds a
backlog: camera/image is best effort with depth 1, so frames that arrive while the node tracks replace
each other in the reader's cache (counted as dropped, from the gaps in the publisher's sequence
numbers). Everything else (inits, the reset service, parameters, timers) waits for the frame in hand,
one search branch (~2-3 ms; ~60 ms with the enhancer). Inference is ONNX Runtime (mlkd_model.load,
backend "onnx"): this module must never import torch.

This node is the ROS I/O around two pure modules: `track_state` (lost / stale video / re-init rules)
and `live_cle` (a box's centre against the ground truth, tracker/cle, or the image centre,
tracker/offset).
Inits are transactional: a box that is absurd for the frame, an init whose stamp names no buffered
frame, or a failure inside the tracker's init leaves the current track exactly as it was.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import deque

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PolygonStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from mlkd_model.frames import BoxError, FrameError, check_box
from mlkd_ros.boxes import Box, box_to_polygon, load_ground_truth, polygon_to_box
from mlkd_ros.camera_frame import CAMERA_FRAME
from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.image_conversion import MAX_IMAGE_PIXELS, ImageConversionError, image_size, image_to_numpy
from mlkd_ros.live_cle import Cle, CleMatcher
from mlkd_ros.node_help import print_help, wants_help
from mlkd_ros.node_process import spin_node
from mlkd_ros.ros_params import declare
from mlkd_ros.stamps import stamp_ns
from mlkd_ros.topics import (
    BOX_TOPIC,
    CLE_TOPIC,
    IMAGE_TOPIC,
    INIT_TOPIC,
    OFFSET_TOPIC,
    RESET_SERVICE,
    STATUS_TOPIC,
    compressed_topic,
)
from mlkd_ros.track_state import POLICIES, LossRule, TrackState

MODEL_PARAMS = ("model_dir", "providers", "enhance", "inference_threads", "inference_spin")
RULE_PARAMS = ("lost_score", "lost_frames", "stale_after", "max_frame_gap")
FUTURE_TOLERANCE_S = 0.25  # an init stamped later than now + this is refused (it names no frame yet)
# An init may name a frame this node never received: camera/image is best effort, depth 1, so a frame is
# skipped whenever a newer one arrives first. The nearest buffered frame within this distance stands in
# for it (3 frames at 30 fps: the target moves a few pixels); anything farther is refused.
MATCH_TOLERANCE_NS = 100_000_000
TIMING_FRAMES = 30  # /diagnostics reports the median timings of the last this many tracked frames
TIMING_KEYS = ("latency_ms", "delivery_ms", "wait_ms", "processing_ms", "inference_ms")


class SkippedFrames:
    """Frames a publisher sent that never reached the callback, from the gaps in its sequence numbers
    (the newest-frame policy of a depth-1 reader, or a best-effort sample lost on the way)."""

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}

    def count(self, info: MessageInfo) -> int:
        seq, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if not seq or not gid:
            return 0  # the middleware does not number its samples
        key = bytes(gid["data"]) if isinstance(gid, dict) else bytes(gid)
        last, self._last[key] = self._last.get(key), seq
        return max(seq - last - 1, 0) if last is not None else 0


class InitError(ValueError):
    """An init that cannot be applied; the current track stays as it was."""


def _model_args(model_dir: str, providers, enhance, threads, spin) -> tuple:
    """MODEL_PARAMS values -> build_tracker's arguments."""
    return (
        (None if model_dir in ("", "embedded") else model_dir),
        tuple(providers),
        bool(enhance),
        int(threads),
        bool(spin),
    )


def build_tracker(
    model_dir: str | None, providers: tuple[str, ...], enhance: bool, threads: int = 1, spin: bool = False
):
    from mlkd_model.load import load_tracker  # onnx backend: imports onnxruntime, never torch

    return load_tracker(model_dir, "onnx", enhance, providers, threads, spin)


class TrackerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("tracker_node", **kwargs)
        p = {}
        p["model_dir"] = declare(
            self, "model_dir", "", "model directory; '' or 'embedded' = built-in NanoTrack v2 ONNX model"
        )
        p["providers"] = declare(
            self, "providers", ["cpu"], "ONNX Runtime providers in preference order: tensorrt, cuda, cpu"
        )
        p["enhance"] = declare(self, "enhance", False, "run the DarkLighter enhancer on every crop (teacher path)")
        declare(self, "inference_threads", 1, "ONNX Runtime intra-op threads (0 = one per core)", 0, 64)
        declare(self, "inference_spin", False, "let idle ONNX Runtime threads busy-wait (costs a core)")
        rule = LossRule(
            lost_score=declare(self, "lost_score", 0.2, "score below which a frame counts as low-score", 0.0, 1.0),
            lost_frames=declare(self, "lost_frames", 10, "consecutive low-score frames before 'lost'", 1, 10000),
            policy=declare(
                self,
                "redetect_policy",
                "recover",
                "after lost_frames low-score frames: keep = keep publishing boxes; stop = publish lost and stop "
                "tracking until re-init; recover = publish lost but keep searching, resume when the score recovers",
            ),
            stale_after=declare(self, "stale_after", 0.5, "s without a frame: state stale (WARN), no box", 0.01, 60.0),
            max_frame_gap=declare(
                self, "max_frame_gap", 1.0, "s without a frame: the track is dropped until a new init", 0.01, 600.0
            ),
        )
        self.init_buffer = declare(
            self, "init_buffer", 30, "recent frames kept to init on the frame an init names", 1, 600, read_only=True
        )
        gt_file = declare(
            self, "ground_truth_file", "", "x,y,w,h per line, line i = i-th image received (replay)", read_only=True
        )
        gt_topic = declare(
            self, "ground_truth_topic", "", "PolygonStamped ground truth matched by stamp (replay)", read_only=True
        )
        self.diag_period = declare(
            self, "diagnostics_period", 1.0, "seconds between /diagnostics messages", 0.05, 60.0, read_only=True
        )
        self.max_pixels = declare(
            self, "max_image_pixels", MAX_IMAGE_PIXELS, "frames with more pixels are refused, before decoding", 1, 2**40
        )
        if rule.policy not in POLICIES:
            self.get_logger().error(f"redetect_policy {rule.policy!r} unknown; using 'recover' ({POLICIES})")
            rule.policy = "recover"
        if rule.stale_after >= rule.max_frame_gap:
            self.get_logger().error("stale_after must be below max_frame_gap; using half of max_frame_gap")
            rule.stale_after = rule.max_frame_gap / 2
        self.track = TrackState(rule)

        self.box_pub = self.create_publisher(PolygonStamped, BOX_TOPIC, CONTROL_QOS)
        self.cle_pub = self.create_publisher(PointStamped, CLE_TOPIC, CONTROL_QOS)  # against ground truth
        self.offset_pub = self.create_publisher(PointStamped, OFFSET_TOPIC, CONTROL_QOS)  # against image centre
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)
        self.status_pub = self.create_publisher(DiagnosticArray, STATUS_TOPIC, CONTROL_QOS)
        self._target, self._confidence = "tracking", math.nan  # the core's state and confidence, last frame

        self._skipped = SkippedFrames()
        self._recent: deque[tuple[int, Image, int]] = deque(maxlen=self.init_buffer)  # stamp, msg, index
        # A box is in its image's frame: the empty polygons sent with no image at hand (stale video, reset)
        # name the frame of the last image seen, so every box of a stream names one frame.
        self._frame_id = CAMERA_FRAME
        self._pending_init: PolygonStamped | None = None
        self._pending_since = 0.0  # when the pending init started waiting for its frame
        self.tracker = None
        self._candidate = None  # a model validated by a parameter change, swapped in once the change is accepted
        self._last_frame_t = math.nan  # monotonic receive time of the newest frame
        self.received = self.processed = self.dropped = self.errors = 0
        self._last_error = ""
        self._model_error = ""
        self._logged: set[str] = set()
        self._done: deque[float] = deque(maxlen=120)
        # Per tracked frame, in ms: latency (stamp -> box published), delivery (stamp -> the middleware
        # received it), wait (-> the callback ran), processing (callback -> published), inference.
        self._timings: deque[tuple[float, ...]] = deque(maxlen=TIMING_FRAMES)
        self.cle = CleMatcher(load_ground_truth(gt_file) if gt_file else None, gt_topic=bool(gt_topic))
        # Load before subscribing: a publisher that waits for this node's subscriptions (a bag player) then
        # starts only when frames can be tracked, rather than losing the first second to the model load.
        self._load_model()
        if gt_topic:
            self.create_subscription(PolygonStamped, gt_topic, self._on_gt, CONTROL_QOS)
        transport = declare(
            self,
            "image_transport",
            "raw",
            "raw: sensor_msgs/Image on camera/image; compressed: CompressedImage (JPEG) on camera/image/compressed",
            read_only=True,
        )
        if transport == "compressed":  # image_transport's convention; follows a remap of camera/image
            topic = compressed_topic(self)
            self.create_subscription(CompressedImage, topic, self._on_image, IMAGE_QOS)
        else:
            if transport != "raw":
                self.get_logger().error(f"image_transport {transport!r} unknown; using 'raw' (raw, compressed)")
            self.create_subscription(Image, IMAGE_TOPIC, self._on_image, IMAGE_QOS)
        self.create_subscription(PolygonStamped, INIT_TOPIC, self._on_init, CONTROL_QOS)
        self.create_service(Trigger, RESET_SERVICE, self._on_reset)
        self.add_on_set_parameters_callback(self._check_params)
        self.add_post_set_parameters_callback(self._on_params_set)
        self.create_timer(self.diag_period, self._publish_diagnostics)
        self.create_timer(0.02, self._tick)  # stale / lost video and inits waiting for their frame

    # ---- callbacks, all on the executor's one thread ----
    @property
    def state(self) -> str:
        return self.track.state

    @property
    def shown_state(self) -> str:
        """The node's state, with the core's uncertain / lost inside an active track."""
        return (
            self._target if self.track.state in ("tracking", "low_score") and self._target != "tracking" else self.state
        )

    @property
    def score(self) -> float:
        return self.track.score

    def _on_image(self, msg: Image, info: MessageInfo) -> None:
        arrival = (info["received_timestamp"], time.time_ns())  # wall clock, as the publisher's stamps
        now = time.monotonic()
        self.dropped += self._skipped.count(info)
        gap = now - self._last_frame_t
        self._last_frame_t = now
        if self.track.arrived(gap):
            self._recent.clear()  # frames from before the gap are no base for an init
            self._announce_loss(msg.header)
        index = self.received
        self._frame_id = msg.header.frame_id
        self._recent.append((stamp_ns(msg.header), msg, index))
        self.received += 1
        self._step((msg, arrival, index))

    def _on_init(self, msg: PolygonStamped) -> None:
        self._pending_init = msg
        self._pending_since = time.monotonic()
        self._step(None)

    def _tick(self) -> None:
        now = time.monotonic()
        expired = None
        event = self.track.tick(now - self._last_frame_t)
        if event == "lost":
            self._recent.clear()
        if self._pending_init is not None and now - self._pending_since > self.track.rule.max_frame_gap:
            expired, self._pending_init = self._pending_init, None
        if event:
            header = PolygonStamped().header
            header.stamp, header.frame_id = self.get_clock().now().to_msg(), self._frame_id
            self._announce_loss(header)
        if expired is not None:
            self._report(
                f"init refused: no frame stamped {stamp_ns(expired.header)} ns arrived within "
                f"{self.track.rule.max_frame_gap:g} s (previous track kept)"
            )

    def _publish_lost(self, header=None) -> None:
        """No target from now on: an empty polygon, on which the follow controller hovers at once. Every
        path that ends or pauses a track (loss, stale video, failure, reset, model change) goes through here."""
        header = self._last_header() if header is None else header
        self.box_pub.publish(PolygonStamped(header=header, polygon=box_to_polygon(None)))

    def _announce_loss(self, header) -> None:
        """The track state just became stale or lost: say so at once, then diagnostics."""
        self._publish_lost(header)
        self.get_logger().warning(f"target {self.track.state}: {self.track.reason}")
        self._publish_diagnostics()

    def _failed(self, text: str, header=None) -> None:
        """Tracking raised: the tracker's state is unknown, so the track ends here (lost, until a new init)."""
        self.track.fail(text)
        self._publish_lost(header)
        self._report(text)

    def _on_reset(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        was = self.state
        self._pending_init = None
        self.track.reset()
        self._publish_lost()
        resp.success, resp.message = True, f"tracking stopped (was {was})"
        self.get_logger().info(resp.message)
        return resp

    def _on_gt(self, msg: PolygonStamped) -> None:
        try:
            box: Box | None = polygon_to_box(msg.polygon) if msg.polygon.points else None
        except BoxError:
            box = None
        cle = self.cle.ground_truth(stamp_ns(msg.header), box)
        if cle is not None:
            self._publish_cle(cle.key, cle)

    def _check_params(self, params) -> SetParametersResult:
        """Refuse what cannot work before it is applied; a new model is loaded here, so a bad one is refused."""
        new = {p.name: p.value for p in params}
        if "redetect_policy" in new and new["redetect_policy"] not in POLICIES:
            return SetParametersResult(successful=False, reason=f"redetect_policy must be one of {POLICIES}")
        rule = self.track.rule
        stale = new.get("stale_after", rule.stale_after)
        gap = new.get("max_frame_gap", rule.max_frame_gap)
        if stale >= gap:
            return SetParametersResult(
                successful=False, reason=f"stale_after ({stale:g}) must be below max_frame_gap ({gap:g})"
            )
        if any(name in MODEL_PARAMS for name in new):
            values = {n: new.get(n, self.get_parameter(n).value) for n in MODEL_PARAMS}
            args = _model_args(*(values[n] for n in MODEL_PARAMS))
            alive = time.monotonic() - self._last_frame_t <= rule.stale_after
            try:
                self._candidate = build_tracker(*args)
            except Exception as exc:
                self._not_a_gap(alive)
                reason = f"cannot load model from {args[0] or '<embedded>'}: {type(exc).__name__}: {exc}"
                self.get_logger().error(f"parameter change refused, keeping the current model: {reason}")
                return SetParametersResult(successful=False, reason=reason)
            self._not_a_gap(alive)
        return SetParametersResult(successful=True)

    def _not_a_gap(self, alive: bool) -> None:
        """The model load above held this executor (frames could not arrive): when the video was alive
        before it, that pause is ours, not the video's, and must not end the track as a video gap would."""
        if alive:
            self._last_frame_t = time.monotonic()

    def _on_params_set(self, params) -> None:
        names = {p.name for p in params}
        for p in params:  # the loss rule can change while tracking
            if p.name in RULE_PARAMS:
                setattr(self.track.rule, p.name, p.value)
            elif p.name == "redetect_policy":
                self.track.rule.policy = p.value
            elif p.name == "max_image_pixels":
                self.max_pixels = p.value
        if names & set(MODEL_PARAMS) and self._candidate is not None:
            tracker, self._candidate = self._candidate, None
            self._use_model(tracker)

    def _last_header(self):
        if self._recent:
            return self._recent[-1][1].header
        header = PolygonStamped().header
        header.frame_id = self._frame_id
        return header

    # ---- errors: logged once per distinct message, always counted and shown in /diagnostics ----
    def _report(self, text: str) -> None:
        self.errors += 1
        self._last_error = text
        if text not in self._logged:
            self._logged.add(text)
            self.get_logger().error(text)
        self._publish_diagnostics()

    # ---- tracking, in the callback of the frame or init that calls for it ----
    def _step(self, latest: tuple[Image, tuple[int, int], int] | None) -> None:
        """Apply a pending init (on the frame it names), then track `latest` (msg, arrival, index)."""
        try:
            if self._pending_init is not None:
                latest = self._apply_init(self._pending_init, latest)
            if latest is not None:
                self._process(*latest)
        except Exception as exc:  # the node must outlive any single bad frame
            if self.context.ok():  # else shutting down (Ctrl-C): the context went away under a publish
                header = None if latest is None else latest[0].header
                self._failed(f"tracking failed: {type(exc).__name__}: {exc}", header)

    def _load_model(self) -> None:
        """The start-up model; a bad one leaves the node up (no_model) until a good one is set."""
        args = _model_args(*(self.get_parameter(n).value for n in MODEL_PARAMS))
        model_dir = args[0]
        try:
            tracker = build_tracker(*args)
        except Exception as exc:  # a bad model dir must not kill the node
            self.tracker = None
            self.track.model(loaded=False)
            self._model_error = f"cannot load model from {model_dir or '<embedded>'}: {type(exc).__name__}: {exc}"
            self._report(self._model_error)
            return
        self._use_model(tracker)

    def _use_model(self, tracker) -> None:
        model_dir, providers, *_ = _model_args(*(self.get_parameter(n).value for n in MODEL_PARAMS))
        had_track = self.track.tracks_frames
        self.tracker, self._model_error = tracker, ""
        self.track.model(loaded=True)
        if had_track:  # the new model starts without a target: say so before anyone acts on old boxes
            self._publish_lost()
        self.get_logger().info(f"model loaded from {model_dir or '<embedded default>'} (providers {providers})")

    def _init_frame(self, init: PolygonStamped) -> tuple[Image, int] | None:
        """The buffered frame the init's stamp names (stamp 0: the newest); None while it may still come."""
        want = stamp_ns(init.header)
        age = time.monotonic() - self._last_frame_t  # NaN before the first frame: not stale, just early
        if age > self.track.rule.max_frame_gap:  # whatever is buffered is from before the video stopped
            raise InitError(f"no frame for {age:.1f} s: the buffered frames are stale")
        if not self._recent:
            return None  # no frame yet
        if want == 0:
            return self._recent[-1][1], self._recent[-1][2]
        oldest, newest, n = self._recent[0][0], self._recent[-1][0], len(self._recent)
        near = min(self._recent, key=lambda r: abs(r[0] - want))
        ahead = (want - self.get_clock().now().nanoseconds) / 1e9
        if ahead > FUTURE_TOLERANCE_S:
            raise InitError(f"init stamped {ahead:.1f} s in the future")
        if near[0] == want or (want < newest and abs(near[0] - want) <= MATCH_TOLERANCE_NS):
            return near[1], near[2]
        if want < oldest:
            raise InitError(
                f"init stamped {(oldest - want) / 1e9:.2f} s before the oldest of the {n} buffered frames "
                f"(init_buffer {self.init_buffer}): that frame is gone"
            )
        if want < newest:
            raise InitError(
                f"init stamp names no frame received (nearest buffered frame {abs(near[0] - want) / 1e9:.2f} s away)"
            )
        return None  # newer than the newest frame: it may still be on its way (_tick gives up on it)

    def _apply_init(self, init: PolygonStamped, latest):
        """Init on the frame the init's stamp names; returns the frame still to track, if any.

        Everything is checked before the tracker is touched, and the tracker's own init is transactional,
        so a refused or failed init leaves the current track as it was.
        """
        self._pending_init = None
        if self.tracker is None:
            self._report(f"init ignored: no model loaded ({self._model_error or 'still loading'})")
            return latest
        try:
            found = self._init_frame(init)
            if found is None:
                self._pending_init = init  # keep waiting for its frame
                return latest
            msg, index = found
            frame, color = image_to_numpy(msg, self.max_pixels)
            box = check_box(polygon_to_box(init.polygon), frame.shape[1], frame.shape[0])
        except (InitError, BoxError, FrameError, ImageConversionError) as exc:
            self._report(f"bad init on tracker/init: {exc} (previous track kept)")
            return latest
        try:
            self.tracker.init(frame, box, color=color)
        except Exception as exc:
            self._report(f"init failed, previous track kept: {type(exc).__name__}: {exc}")
            return latest
        self.track.started(frame.shape)
        self._last_error = ""
        self.get_logger().info(f"tracking started on box {[round(v, 1) for v in box]}")
        self._target, self._confidence = "tracking", 1.0  # the init box is the target by definition
        self._publish(msg.header, box, 1.0, frame.shape, index)
        self._publish_status(msg.header, box, 1.0)
        # Do not track again on the very frame we initialised on.
        if latest is not None and latest[0] is msg:
            return None
        return latest

    def _process(self, msg: Image, arrival: tuple[int, int], index: int) -> None:
        """Track one frame; `arrival` = (when the middleware received it, when its callback ran), in ns."""
        try:
            frame, color = image_to_numpy(msg, self.max_pixels)
        except ImageConversionError as exc:
            self._report(f"bad image on camera/image: {exc}")
            return
        was = self.track.tracks_frames
        go = self.tracker is not None and self.track.frame(frame.shape)
        if was and not go:  # resized: buffered frames of the old size are no base for an init any more
            keep = [r for r in self._recent if image_size(r[1]) == frame.shape[:2]]
            self._recent.clear()
            self._recent.extend(keep)
            self._announce_loss(msg.header)
        if not go:
            if not self._model_error:
                self._last_error = ""
            return
        t0 = time.perf_counter()
        box, score = self.tracker.track(frame, color=color)
        inference_ms = (time.perf_counter() - t0) * 1e3
        self.processed += 1
        publish = self.track.scored(score)
        status = getattr(self.tracker, "status", None)  # the core's judgement: tracking / uncertain / lost
        self._target = status.state if status is not None else "tracking"
        self._confidence = status.confidence if status is not None else math.nan
        self._last_error = ""
        # only `tracking` gives the follow controller a box: on any doubt it gets the empty polygon and holds
        self._publish(msg.header, box if publish and self._target == "tracking" else None, score, frame.shape, index)
        self._publish_status(msg.header, box, score)
        published = time.time_ns()
        self._done.append(time.monotonic())
        stamp = stamp_ns(msg.header)
        latency_ns = self.get_clock().now().nanoseconds - stamp  # the node's clock: sim time in a replay
        received, called = arrival
        ms = [latency_ns, received - stamp, called - received, published - called]
        self._timings.append((*(v / 1e6 for v in ms), inference_ms))

    def _publish(self, header, box: Box | None, score: float, shape, index: int | None = None) -> None:
        if box is None:
            self._publish_lost(header)
            return
        self.box_pub.publish(PolygonStamped(header=header, polygon=box_to_polygon(box)))
        cle = self.cle.box(header, stamp_ns(header), box, shape, index)
        if cle is not None:
            self._publish_cle(header, cle)

    def _publish_status(self, header, box: Box, score: float) -> None:
        """tracker/status: box + score + state of one frame in one message (topics.STATUS_TOPIC)."""
        state = self._target if self.state in ("tracking", "low_score") else self.state
        level = {"tracking": DiagnosticStatus.OK, "uncertain": DiagnosticStatus.WARN}.get(state, DiagnosticStatus.ERROR)
        values = {"state": state, "confidence": f"{self._confidence:.3f}", "score": f"{score:.3f}"}
        values.update(zip("xywh", (f"{v:.2f}" for v in box), strict=True))
        status = DiagnosticStatus(level=level, name="tracker", message=state, hardware_id="mlkd")
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self.status_pub.publish(DiagnosticArray(header=header, status=[status]))

    def _publish_cle(self, header, cle: Cle) -> None:
        pt = PointStamped(header=header)
        pt.point.x, pt.point.y = cle.xy
        pt.point.z = math.hypot(pt.point.x, pt.point.y)
        (self.cle_pub if cle.ground_truth else self.offset_pub).publish(pt)

    # ---- diagnostics ----
    def _timing_medians(self) -> dict[str, str]:
        """TIMING_KEYS -> median over the last TIMING_FRAMES tracked frames ("nan" before the first)."""
        columns = zip(*self._timings, strict=True) if self._timings else ([math.nan] for _ in TIMING_KEYS)
        return {key: f"{statistics.median(values):.2f}" for key, values in zip(TIMING_KEYS, columns, strict=True)}

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        fps = sum(1 for t in self._done if now - t <= 2.0) / 2.0
        status = DiagnosticStatus(name=f"mlkd_tracker: {self.get_fully_qualified_name()}", hardware_id="mlkd")
        error = self._last_error or self._model_error  # the newest problem first
        if error:
            status.level, status.message = DiagnosticStatus.ERROR, error
        elif self.shown_state in ("lost", "low_score", "stale", "uncertain"):
            text = f"target {self.shown_state.replace('_', ' ')}"
            if self.track.reason:
                text += f": {self.track.reason}"
            if self.track.needs_init and self.state == "lost":
                text += "; waiting for a new init"
            status.level, status.message = DiagnosticStatus.WARN, text
        else:
            status.level, status.message = DiagnosticStatus.OK, self.state
        values = {
            "state": self.shown_state,
            "confidence": f"{self._confidence:.3f}",
            "reason": self.track.reason,
            "frame_age_s": f"{now - self._last_frame_t:.2f}",
            "score": f"{self.score:.3f}",
            "fps": f"{fps:.1f}",
            **self._timing_medians(),
            "frames_received": str(self.received),
            "frames_processed": str(self.processed),
            "frames_dropped": str(self.dropped),
            "errors": str(self.errors),
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int | None:
    if wants_help(args):
        return print_help(__file__, "tracker_node", __doc__.splitlines()[0])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rclpy.init(args=args)
    return spin_node(TrackerNode())


if __name__ == "__main__":
    main()
