"""ROS 2 tracker node: camera/image + tracker/init -> tracker/box, tracker/cle, /diagnostics.

The subscription callback only stores the newest frame; a worker thread tracks on it. A slow
model therefore never builds a backlog: frames that arrive while it is busy replace each other
and are counted as dropped. Inference is ONNX Runtime (mlkd_model.load, backend "onnx"): this
module must never import torch.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PolygonStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from mlkd_model.frames import BoxError, FrameError, check_box
from mlkd_ros.boxes import Box, box_to_polygon, center, load_ground_truth, polygon_to_box
from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
from mlkd_ros.image_conversion import ImageConversionError, image_to_numpy
from mlkd_ros.ros_params import declare

POLICIES = ("keep", "stop", "recover")
MODEL_PARAMS = ("model_dir", "providers", "enhance", "inference_threads", "inference_spin")


def _stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _valid(box: Box) -> bool:
    return all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0


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
        self.lost_score = declare(self, "lost_score", 0.2, "score below which a frame counts as low-score", 0.0, 1.0)
        self.lost_frames = declare(self, "lost_frames", 10, "consecutive low-score frames before 'lost'", 1, 10000)
        self.policy = declare(
            self,
            "redetect_policy",
            "recover",
            "after lost_frames low-score frames: keep = keep publishing boxes; stop = publish lost and stop "
            "tracking until re-init; recover = publish lost but keep searching, resume when the score recovers",
        )
        self.init_buffer = declare(
            self, "init_buffer", 30, "recent frames kept to init on the frame an init names", 1, 600
        )
        gt_file = declare(self, "ground_truth_file", "", "x,y,w,h per line, line i = i-th image received (replay)")
        gt_topic = declare(self, "ground_truth_topic", "", "PolygonStamped ground truth matched by stamp (replay)")
        self.diag_period = declare(self, "diagnostics_period", 1.0, "seconds between /diagnostics messages", 0.05, 60.0)
        if self.policy not in POLICIES:
            self.get_logger().error(f"redetect_policy {self.policy!r} unknown; using 'recover' ({POLICIES})")
            self.policy = "recover"

        self.box_pub = self.create_publisher(PolygonStamped, "tracker/box", CONTROL_QOS)
        self.cle_pub = self.create_publisher(PointStamped, "tracker/cle", CONTROL_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", CONTROL_QOS)

        self._cv = threading.Condition()
        self._latest: tuple[Image, float, int] | None = None  # msg, receive time, receive index
        self._recent: deque[tuple[int, Image, int]] = deque(maxlen=self.init_buffer)  # stamp, msg, index
        self._pending_init: PolygonStamped | None = None
        self._init_new = False  # wake the worker once per init, not on every wait for the init's frame
        self._reload = False
        self._generation = 0  # bumped by init / reset so a result computed before them is discarded
        self._running = True
        self.tracker = None
        self.state = "idle"  # idle | tracking | low_score | lost | no_model
        self.score = math.nan
        self.received = self.processed = self.dropped = self.errors = 0
        self._low = 0
        self._last_error = ""
        self._model_error = ""
        self._logged: set[str] = set()
        self._done: deque[float] = deque(maxlen=120)
        self.latency_ms = self.processing_ms = self.inference_ms = math.nan
        self._gt = load_ground_truth(gt_file) if gt_file else None
        self._gt_by_stamp: dict[int, Box | None] = {}
        # With a ground-truth topic, a frame tracked before its ground truth arrived waits here (stamp ->
        # header, box centre) rather than being measured against the image centre: the two race over DDS.
        self._gt_topic = bool(gt_topic)
        self._cle_waiting: dict[int, tuple[object, tuple[float, float]]] = {}
        self._gt_lock = threading.Lock()
        # Load before subscribing: a publisher that waits for this node's subscriptions (a bag player) then
        # starts only when frames can be tracked, rather than losing the first second to the model load.
        self._load_model()
        if gt_topic:
            self.create_subscription(PolygonStamped, gt_topic, self._on_gt, CONTROL_QOS)
        self.create_subscription(Image, "camera/image", self._on_image, IMAGE_QOS)
        self.create_subscription(PolygonStamped, "tracker/init", self._on_init, CONTROL_QOS)
        self.create_service(Trigger, "tracker/reset", self._on_reset)
        self.add_on_set_parameters_callback(self._check_params)
        self.add_post_set_parameters_callback(self._on_params_set)
        self.create_timer(self.diag_period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="tracker_worker", daemon=True)
        self._worker.start()

    # ---- callbacks (executor thread): store and wake the worker, nothing heavy ----
    def _on_image(self, msg: Image) -> None:
        with self._cv:
            if self._latest is not None:
                self.dropped += 1  # the worker never saw it: a newer frame replaces it
            self._latest = (msg, time.monotonic(), self.received)
            self._recent.append((_stamp_ns(msg.header), msg, self.received))
            self.received += 1
            self._cv.notify()

    def _on_init(self, msg: PolygonStamped) -> None:
        with self._cv:
            self._pending_init, self._init_new = msg, True
            self._generation += 1
            self._cv.notify()

    def _on_reset(self, _req: Trigger.Request, resp: Trigger.Response) -> Trigger.Response:
        with self._cv:
            was = self.state
            self._pending_init = None
            self._generation += 1
            if self.state != "no_model":
                self.state = "idle"
        self.box_pub.publish(PolygonStamped(header=self._last_header(), polygon=box_to_polygon(None)))
        resp.success, resp.message = True, f"tracking stopped (was {was})"
        self.get_logger().info(resp.message)
        return resp

    def _on_gt(self, msg: PolygonStamped) -> None:
        try:
            box: Box | None = polygon_to_box(msg.polygon) if msg.polygon.points else None
        except BoxError:
            box = None
        stamp = _stamp_ns(msg.header)
        with self._gt_lock:
            self._gt_by_stamp[stamp] = box
            while len(self._gt_by_stamp) > 1000:
                self._gt_by_stamp.pop(next(iter(self._gt_by_stamp)))
            waiting = self._cle_waiting.pop(stamp, None)
        if waiting is not None and box is not None and _valid(box):
            self._publish_cle(waiting[0], waiting[1], center(box))

    def _check_params(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "redetect_policy" and p.value not in POLICIES:
                return SetParametersResult(successful=False, reason=f"redetect_policy must be one of {POLICIES}")
        return SetParametersResult(successful=True)

    def _on_params_set(self, params) -> None:
        for p in params:  # the loss rule can change while tracking
            if p.name in ("lost_score", "lost_frames"):
                setattr(self, p.name, p.value)
            elif p.name == "redetect_policy":
                self.policy = p.value
        if any(p.name in MODEL_PARAMS for p in params):
            with self._cv:
                self._reload = True
                self._cv.notify()

    def _last_header(self):
        with self._cv:
            return self._recent[-1][1].header if self._recent else PolygonStamped().header

    # ---- errors: logged once per distinct message, always counted and shown in /diagnostics ----
    def _report(self, text: str) -> None:
        self.errors += 1
        self._last_error = text
        if text not in self._logged:
            self._logged.add(text)
            self.get_logger().error(text)
        self._publish_diagnostics()

    # ---- worker thread ----
    def _work(self) -> None:
        while self._running:
            with self._cv:
                self._cv.wait_for(
                    lambda: not self._running or self._latest or self._init_new or self._reload, timeout=0.5
                )
                self._init_new = False
                reload, self._reload = self._reload, False
                latest, self._latest = self._latest, None
                init = self._pending_init
                generation = self._generation
            try:
                if reload:
                    self._load_model()
                if init is not None:
                    latest = self._apply_init(init, latest, generation)
                if latest is not None:
                    self._process(*latest, generation)
            except Exception as exc:  # the node must outlive any single bad frame
                if not self.context.ok():
                    break  # shutting down (Ctrl-C): the context went away under a publish; not an error
                self._report(f"tracking failed: {type(exc).__name__}: {exc}")

    def _load_model(self) -> None:
        from mlkd_model.load import load_tracker  # onnx backend: imports onnxruntime, never torch

        model_dir = self.get_parameter("model_dir").value
        model_dir = None if model_dir in ("", "embedded") else model_dir
        providers = tuple(self.get_parameter("providers").value)
        enhance = bool(self.get_parameter("enhance").value)
        threads, spin = self.get_parameter("inference_threads").value, self.get_parameter("inference_spin").value
        try:
            tracker = load_tracker(model_dir, "onnx", enhance, providers, threads, spin)
        except Exception as exc:  # a bad model dir must not kill the node
            self.tracker, self.state = None, "no_model"
            self._model_error = f"cannot load model from {model_dir or '<embedded>'}: {type(exc).__name__}: {exc}"
            self._report(self._model_error)
            return
        with self._cv:
            self.tracker, self._model_error, self.state = tracker, "", "idle"
        self.get_logger().info(f"model loaded from {model_dir or '<embedded default>'} (providers {providers})")

    def _apply_init(self, init: PolygonStamped, latest, generation: int):
        """Init on the frame the init's stamp names (else the newest); returns the frame still to track, if any."""
        if self.tracker is None:
            with self._cv:
                self._pending_init = None if self._pending_init is init else self._pending_init
            self._report(f"init ignored: no model loaded ({self._model_error or 'still loading'})")
            return latest
        want = _stamp_ns(init.header)
        with self._cv:
            if self._pending_init is init:
                self._pending_init = None
            match = next(((m, i) for s, m, i in reversed(self._recent) if s == want), None)
            newest = self._recent[-1] if self._recent else None
        if match is None:
            if newest is None:
                with self._cv:  # no frame yet: keep the init for the first one
                    self._pending_init = self._pending_init or init
                return None
            if want and newest[0] < want:
                with self._cv:  # its frame has not arrived yet
                    self._pending_init = self._pending_init or init
                return latest
            match = (newest[1], newest[2])
        msg, index = match
        try:
            frame, color = image_to_numpy(msg)
            box = check_box(polygon_to_box(init.polygon), frame.shape[1], frame.shape[0])
        except (BoxError, FrameError, ImageConversionError) as exc:
            self._report(f"bad init on tracker/init: {exc}")
            return latest
        self.tracker.init(frame, box, color=color)
        with self._cv:
            if generation != self._generation:
                return None  # a reset or a newer init came in meanwhile; it wins
            self.state, self._low, self.score, self._last_error = "tracking", 0, 1.0, ""
        self.get_logger().info(f"tracking started on box {[round(v, 1) for v in box]}")
        self._publish(msg.header, box, 1.0, frame.shape, index)
        # Do not track again on the very frame we initialised on.
        if latest is not None and latest[0] is msg:
            return None
        return latest

    def _process(self, msg: Image, received_at: float, index: int, generation: int) -> None:
        try:
            frame, color = image_to_numpy(msg)
        except ImageConversionError as exc:
            self._report(f"bad image on camera/image: {exc}")
            return
        stopped = self.state == "lost" and self.policy == "stop"
        if self.tracker is None or self.state in ("idle", "no_model") or stopped:
            if not self._model_error:
                self._last_error = ""
            return
        t0 = time.perf_counter()
        box, score = self.tracker.track(frame, color=color)
        self.inference_ms = (time.perf_counter() - t0) * 1e3
        with self._cv:
            if generation != self._generation:
                return  # reset or re-init arrived while this frame was tracked
            self.processed += 1
            self.score = float(score)
            self._low = self._low + 1 if score < self.lost_score else 0
            lost = self._low >= self.lost_frames and self.policy != "keep"
            self.state = "lost" if lost else ("low_score" if self._low else "tracking")
            self._last_error = ""
        self._publish(msg.header, None if lost else box, score, frame.shape, index)
        now = time.monotonic()
        self._done.append(now)
        self.processing_ms = (now - received_at) * 1e3
        self.latency_ms = (self.get_clock().now().nanoseconds - _stamp_ns(msg.header)) / 1e6

    def _publish(self, header, box: Box | None, score: float, shape, index: int | None = None) -> None:
        self.box_pub.publish(PolygonStamped(header=header, polygon=box_to_polygon(box)))
        if box is None:
            return
        box_center = center(box)
        stamp = _stamp_ns(header)
        with self._gt_lock:
            known = stamp in self._gt_by_stamp
            gt = self._gt_by_stamp.get(stamp)
            if self._gt_topic and not known:
                self._cle_waiting[stamp] = (header, box_center)
                while len(self._cle_waiting) > 1000:
                    self._cle_waiting.pop(next(iter(self._cle_waiting)))
                return
        if gt is None and self._gt is not None and index is not None and index < len(self._gt):
            gt = tuple(self._gt[index])
        if gt is not None and _valid(gt):
            ref = center(gt)
        elif self._gt_topic:
            return  # the topic said this frame has no ground truth: no CLE to report
        else:
            ref = ((shape[1] - 1) / 2, (shape[0] - 1) / 2)  # live, or a frame the file does not label
        self._publish_cle(header, box_center, ref)

    def _publish_cle(self, header, box_center: tuple[float, float], ref: tuple[float, float]) -> None:
        pt = PointStamped(header=header)
        pt.point.x, pt.point.y = box_center[0] - ref[0], box_center[1] - ref[1]
        pt.point.z = math.hypot(pt.point.x, pt.point.y)
        self.cle_pub.publish(pt)

    # ---- diagnostics ----
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        fps = sum(1 for t in self._done if now - t <= 2.0) / 2.0
        status = DiagnosticStatus(name=f"mlkd_tracker: {self.get_fully_qualified_name()}", hardware_id="mlkd")
        error = self._last_error or self._model_error  # the newest problem first
        if error:
            status.level, status.message = DiagnosticStatus.ERROR, error
        elif self.state in ("lost", "low_score"):
            status.level, status.message = DiagnosticStatus.WARN, f"target {self.state.replace('_', ' ')}"
        else:
            status.level, status.message = DiagnosticStatus.OK, self.state
        values = {
            "state": self.state,
            "score": f"{self.score:.3f}",
            "fps": f"{fps:.1f}",
            "latency_ms": f"{self.latency_ms:.1f}",
            "processing_ms": f"{self.processing_ms:.1f}",
            "inference_ms": f"{self.inference_ms:.1f}",
            "frames_received": str(self.received),
            "frames_processed": str(self.processed),
            "frames_dropped": str(self.dropped),
            "errors": str(self.errors),
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)

    def stop(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify()
        self._worker.join(timeout=2.0)


def main(args: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rclpy.init(args=args)
    node = TrackerNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
