"""rosbag2 flights with the `rosbags` library (real rosbag2 format, sqlite3 or mcap; no ROS install needed).

- `BagWriter`: messages already serialized as CDR (what rclpy's raw subscriptions hand out, or what
  `rosbags`' typestore makes) into a new bag;
- `bag_from_frames`: an OTB folder (img/*.jpg + groundtruth_rect.txt) -> a bag with `camera/image` and
  `ground_truth/box`, so any benchmark sequence can be replayed as a flight;
- `read_messages` / `read_frames` / `read_boxes`: iterate a bag (topics by relative or absolute name,
  images raw or JPEG-compressed); a cut mcap gives its complete messages and a warning, corrupt data
  (an mcap chunk failing its CRC, a damaged sqlite3 file, a message that does not decode) one clear
  `BagError` naming the bag and the message;
The ROS front-ends (recorder, player) are in mlkd_ros/commands/record.py and replay.py; this module
needs no rclpy.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.writer import StoragePlugin
from rosbags.typesys import Stores, get_typestore

from mlkd_model.boxes import bounding_box, corners, is_labelled
from mlkd_model.errors import UserError
from mlkd_ros.camera_frame import CAMERA_FRAME
from mlkd_ros.stamps import stamp_ns
from mlkd_ros.topics import (
    BOX_TOPIC,
    CAMERA_INFO_TOPIC,
    CLE_TOPIC,
    COMPRESSED_TOPIC,
    GT_TOPIC,
    IMAGE_TOPIC,
    INIT_TOPIC,
    OFFSET_TOPIC,
)

log = logging.getLogger("mlkd.bag")

# What `mlkd record` takes by default: the video, the tracker's output, and ground truth where it exists.
RECORD_TOPICS = {
    IMAGE_TOPIC: "sensor_msgs/msg/Image",
    COMPRESSED_TOPIC: "sensor_msgs/msg/CompressedImage",
    CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
    BOX_TOPIC: "geometry_msgs/msg/PolygonStamped",
    CLE_TOPIC: "geometry_msgs/msg/PointStamped",
    OFFSET_TOPIC: "geometry_msgs/msg/PointStamped",
    GT_TOPIC: "geometry_msgs/msg/PolygonStamped",
    INIT_TOPIC: "geometry_msgs/msg/PolygonStamped",
}
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
TYPESTORE = get_typestore(Stores.ROS2_KILTED)


class BagError(UserError, ValueError):
    """A bag that cannot be read: missing, truncated, corrupt, or without the expected topic."""


class _CrcMcapWriter(McapWriter):
    """rosbags' mcap storage with each chunk's CRC filled in: rosbags writes 0 ("no CRC"), so flipped bits in a
    bag of ours would replay silently; with it they are an error (mcap_scan.py checks it, as rosbags' reader does)."""

    CRC_AT = 1 + 8 + 8 + 8 + 8  # chunk record: opcode, length, start time, end time, uncompressed size, then the CRC

    def close_chunk(self) -> None:
        crc = zlib.crc32(self.chunk.bio.getvalue())  # of the uncompressed records, as the mcap spec defines it
        start = self.bio.tell()  # the chunk record is written here
        super().close_chunk()
        end = self.bio.tell()
        self.bio.seek(start + self.CRC_AT)
        self.bio.write(struct.pack("<I", crc))
        self.bio.seek(end)


class _Writer(Writer):
    STORAGE_PLUGINS = MappingProxyType({**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _CrcMcapWriter})


class BagWriter:
    """Write CDR messages to a new bag; connections are added on first use of a topic."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, not {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; rosbag2 writes a new folder")
        self.writer = _Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self.writer.open()
        self.conns: dict[str, object] = {}
        self.count = 0

    def write(self, topic: str, msgtype: str, data: bytes, t_ns: int) -> None:
        conn = self.conns.get(topic)
        if conn is None:
            conn = self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=TYPESTORE)
        self.writer.write(conn, int(t_ns), data)
        self.count += 1

    def write_msg(self, topic: str, msg, t_ns: int) -> None:
        """`msg`: a rosbags typestore message."""
        self.write(topic, msg.__msgtype__, bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__)), t_ns)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- typestore message builders (no rclpy needed)
def _stamp(t_ns: int):
    time_type = TYPESTORE.types["builtin_interfaces/msg/Time"]
    return time_type(sec=int(t_ns // 1_000_000_000), nanosec=int(t_ns % 1_000_000_000))


def _header(t_ns: int, frame_id: str = CAMERA_FRAME):
    return TYPESTORE.types["std_msgs/msg/Header"](stamp=_stamp(t_ns), frame_id=frame_id)


def image_msg(bgr: np.ndarray, t_ns: int):
    h, w = bgr.shape[:2]
    data = np.ascontiguousarray(bgr, dtype=np.uint8).reshape(-1)
    return TYPESTORE.types["sensor_msgs/msg/Image"](
        header=_header(t_ns), height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3, data=data
    )


def box_msg(box, t_ns: int):
    """x,y,w,h -> 4-corner PolygonStamped (the tracker's convention); NaN box -> empty polygon."""
    pt = TYPESTORE.types["geometry_msgs/msg/Point32"]
    pts = [pt(x=x, y=y, z=0.0) for x, y in corners(box)] if is_labelled(box) else []
    poly = TYPESTORE.types["geometry_msgs/msg/Polygon"](points=pts)
    return TYPESTORE.types["geometry_msgs/msg/PolygonStamped"](header=_header(t_ns), polygon=poly)


def polygon_box(poly) -> np.ndarray:
    """Polygon (typestore or rclpy) -> x,y,w,h of its bounding box; NaNs when empty."""
    if not poly.points:
        return np.full(4, np.nan)
    return bounding_box([p.x for p in poly.points], [p.y for p in poly.points])


def bag_from_frames(
    folder: str | Path,
    out: str | Path,
    fps: float = 30.0,
    storage: str = "mcap",
    start_ns: int = 1_700_000_000_000_000_000,
) -> int:
    """OTB folder -> bag with camera/image (+ ground_truth/box when groundtruth_rect.txt exists). Frames count."""
    import cv2

    from mlkd_ros.boxes import load_ground_truth

    folder = Path(folder)
    images = sorted(p for p in (folder / "img").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise BagError(f"no images in {folder / 'img'}")
    gt_file = folder / "groundtruth_rect.txt"
    gt = load_ground_truth(gt_file) if gt_file.exists() else None
    period = round(1e9 / fps)
    with BagWriter(out, storage) as w:
        for i, p in enumerate(images):
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if bgr is None:
                raise BagError(f"cannot read image {p}")
            t = start_ns + i * period
            w.write_msg(IMAGE_TOPIC, image_msg(bgr, t), t)
            if gt is not None and i < len(gt):
                w.write_msg(GT_TOPIC, box_msg(gt[i], t), t)
    return len(images)


# ---- reading
@dataclass
class BagMessage:
    topic: str
    msgtype: str
    t_ns: int
    data: bytes
    bag: Path | None = None
    index: int = 0  # among the bag's messages on this topic, from 0

    @property
    def where(self) -> str:
        """Which message, for errors: the bag, the topic, its place on it and its recording time."""
        return f"bag {self.bag}: /{self.topic} message {self.index} (recorded at {self.t_ns / 1e9:.3f} s)"

    def decode(self):
        try:
            return TYPESTORE.deserialize_cdr(self.data, self.msgtype)
        except Exception as exc:  # rosbags' SerdeError, or struct / index / unicode errors from the bytes
            raise BagError(f"{self.where} is corrupt: not a {self.msgtype} ({exc})") from exc


def canonical(topic: str) -> str:
    """The absolute name `ros2 bag record` writes ("/camera/image") for a relative or absolute topic."""
    return "/" + topic.strip().lstrip("/")


def read_messages(path: str | Path, topics: list[str] | None = None) -> Iterator[BagMessage]:
    """All (or the given topics') messages, in recorded order; topics match relative or absolute names and
    BagMessage.topic is the relative one. mcap files are scanned from the start (mlkd_ros/mcap_scan.py): a
    cut file yields every complete message and a warning, a chunk failing its CRC is a BagError. sqlite3:
    rosbags' reader, damage -> BagError (message count checked against metadata.yaml)."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if not path.is_dir() and path.suffix != ".mcap":
        raise BagError(f"bag {path} is not a rosbag2 folder or an .mcap file")
    wanted = None if topics is None else {canonical(t) for t in topics}
    mcaps = [path] if path.suffix == ".mcap" and path.is_file() else sorted(path.glob("*.mcap"))
    counts: dict[str, int] = {}
    if mcaps:
        for m in _read_mcap(path, mcaps, wanted):
            yield _numbered(m, path, counts)
        return
    if not (path / "metadata.yaml").exists() and not list(path.glob("*.db3")):
        raise BagError(f"{path} holds no rosbag2 bag (no metadata.yaml, .mcap or .db3 file)")
    n, expected = 0, None
    try:
        with Reader(path) as reader:
            conns = [c for c in reader.connections if wanted is None or canonical(c.topic) in wanted]
            if not conns:
                return  # rosbags reads *every* connection when given none
            expected = sum(c.msgcount for c in conns)
            for conn, t, data in reader.messages(connections=conns):
                n += 1
                yield _numbered(BagMessage(conn.topic.lstrip("/"), conn.msgtype, t, bytes(data)), path, counts)
    except BagError:
        raise
    except Exception as exc:
        # rosbags raises ReaderError for most damage, but sqlite3 internals (sqlite3.DatabaseError, struct.error,
        # KeyError on a cut index...) leak through; all mean the same to the user.
        raise BagError(f"bag {path} is truncated or corrupt ({type(exc).__name__}: {exc}) after {n} messages") from exc
    if expected is not None and n < expected:
        raise BagError(f"bag {path} is truncated: {n} of {expected} messages readable")


def _numbered(m: BagMessage, bag: Path, counts: dict[str, int]) -> BagMessage:
    m.bag, m.index = bag, counts.get(m.topic, 0)
    counts[m.topic] = m.index + 1
    return m


def _read_mcap(path: Path, files: list[Path], wanted: set[str] | None) -> Iterator[BagMessage]:
    from mlkd_ros.mcap_scan import McapError, McapScan, scan_messages

    for f in files:
        scan, n = McapScan(f), 0
        try:
            for topic, msgtype, t, data in scan_messages(f, scan):
                if wanted is None or canonical(topic) in wanted:
                    n += 1
                    yield BagMessage(topic.lstrip("/"), msgtype, t, data)
        except McapError as exc:
            raise BagError(f"bag {path} is corrupt: {exc}") from exc
        if scan.truncated:
            log.warning(
                "bag %s: %s is cut short (%s); using the %d complete messages before it", path, f.name, scan.detail, n
            )


def image_array(msg, where: str = "a message of the bag") -> np.ndarray:
    """A typestore sensor_msgs/Image or CompressedImage -> BGR array, by the live node's own conversion;
    `where` says which message, for the BagError a bad one gives."""
    from mlkd_model.frames import FrameError, to_bgr
    from mlkd_ros.image_conversion import ImageConversionError, image_to_numpy

    try:
        img, color = image_to_numpy(msg)
        return to_bgr(img, color)
    except (ImageConversionError, FrameError) as exc:
        kind = "compressed frame" if hasattr(msg, "format") else "image"
        raise BagError(f"{where} is a bad {kind}: {exc}") from exc


def bag_topics(path: str | Path) -> set[str]:
    """Relative names of the topics a bag holds messages on (metadata.yaml, else a scan of the data)."""
    import yaml

    meta = Path(path) / "metadata.yaml"
    if meta.exists():
        try:
            info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
            return {
                t["topic_metadata"]["name"].lstrip("/") for t in info["topics_with_message_count"] if t["message_count"]
            }
        except (yaml.YAMLError, KeyError, TypeError):
            log.warning("%s unreadable; scanning the bag for its topics", meta)
    return {m.topic for m in read_messages(path)}


def image_topic(path: str | Path, topic: str | None = None) -> str:
    """The camera topic to replay: `topic` if given, else camera/image, else camera/image/compressed."""
    topics = bag_topics(path)
    candidates = [topic.lstrip("/")] if topic else [IMAGE_TOPIC, COMPRESSED_TOPIC]
    for t in candidates:
        if t in topics:
            return t
    raise BagError(f"bag {path} has no {' or '.join('/' + t for t in candidates)} messages; it has {sorted(topics)}")


def read_frames(path: str | Path, topic: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(header stamp ns, BGR) for each image of the bag, in order (raw or compressed, see image_topic)."""
    topic = image_topic(path, topic)
    for m in read_messages(path, [topic]):
        msg = m.decode()
        yield stamp_ns(msg.header), image_array(msg, m.where)


def read_boxes(path: str | Path, topic: str) -> dict[int, np.ndarray]:
    """header stamp ns -> x,y,w,h (NaN when the polygon is empty) of a PolygonStamped topic."""
    out = {}
    for m in read_messages(path, [topic]):
        msg = m.decode()
        out[stamp_ns(msg.header)] = polygon_box(msg.polygon)
    return out
