"""Bags as `ros2 bag record` writes them, made with the rosbags library: fully qualified topic names
(/camera/image, /camera/image/compressed, /ground_truth/box), mcap or sqlite3; and for mcap, chunks
compressed with zstd and carrying their CRC, as rosbag2's mcap storage (the mcap C++ writer) does by
default (rosbags itself writes uncompressed chunks with CRC 0).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import Writer

from mlkd_ros.bag import STORAGES, TYPESTORE, box_msg, image_msg

MAGIC = b"\x89MCAP0\r\n"
START_NS = 1_750_000_000_000_000_000


def compressed_msg(bgr: np.ndarray, t_ns: int, quality: int = 90):
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    header = image_msg(bgr[:1, :1], t_ns).header
    return TYPESTORE.types["sensor_msgs/msg/CompressedImage"](
        header=header, format="bgr8; jpeg compressed bgr8", data=np.frombuffer(jpeg.tobytes(), np.uint8)
    )


def write_ros2_bag(
    out: Path, frames: list[np.ndarray], gt: np.ndarray | None, storage: str, image: str = "raw", zstd: bool = True
) -> Path:
    """`image`: raw (/camera/image), compressed (/camera/image/compressed), or none (no camera at all).
    mcap chunks get their CRC, and zstd compression unless zstd=False."""
    with Writer(out, version=9, storage_plugin=STORAGES[storage]) as w:
        conns = {}

        def put(topic: str, msg, t: int) -> None:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msg.__msgtype__, typestore=TYPESTORE)
            w.write(conns[topic], t, bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__)))

        for i, bgr in enumerate(frames):
            t = START_NS + i * 33_333_333
            if image == "raw":
                put("/camera/image", image_msg(bgr, t), t)
            elif image == "compressed":
                put("/camera/image/compressed", compressed_msg(bgr, t), t)
            if gt is not None:
                put("/ground_truth/box", box_msg(gt[i], t), t + 1_000_000)
    if storage == "mcap":
        for f in out.glob("*.mcap"):
            chunks_with_crc(f, zstd)
    return out


def chunks_with_crc(path: Path, compress: bool = True) -> int:
    """Rewrite the data section with CRC-carrying (and zstd-compressed) chunks; the summary is dropped (a
    footer with summary offset 0 is valid mcap). Returns the number of chunks."""
    from backports import zstd

    data = path.read_bytes()
    assert data.startswith(MAGIC)
    out, pos, chunks = bytearray(MAGIC), len(MAGIC), 0
    while pos < len(data) - len(MAGIC):
        op, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        body = data[pos + 9 : pos + 9 + length]
        pos += 9 + length
        if op == 0x06:
            start, end, size, _crc = struct.unpack_from("<QQQI", body, 0)
            (clen,) = struct.unpack_from("<I", body, 28)
            assert body[32 : 32 + clen] == b"", "rosbags writes uncompressed chunks"
            (n,) = struct.unpack_from("<Q", body, 32)
            records = body[40 : 40 + n]
            packed, codec = (zstd.compress(records), b"zstd") if compress else (records, b"")
            new = struct.pack("<QQQI", start, end, size, zlib.crc32(records))
            new += struct.pack("<I", len(codec)) + codec + struct.pack("<Q", len(packed)) + packed
            out += struct.pack("<BQ", 0x06, len(new)) + new
            chunks += 1
        elif op in (0x01, 0x03, 0x04, 0x05):  # header, schema, channel, message: kept as they are
            out += data[pos - 9 - length : pos]
        elif op == 0x0F:  # data end: then a footer without summary
            out += struct.pack("<BQI", 0x0F, 4, 0)
            out += struct.pack("<BQQQI", 0x02, 20, 0, 0, 0)
            break
    out += MAGIC
    path.write_bytes(bytes(out))
    return chunks


def chunk_payload_offsets(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each chunk's compressed payload in the file: where to flip a bit."""
    data = path.read_bytes()
    pos, found = len(MAGIC), []
    while pos < len(data) - len(MAGIC):
        op, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        if op == 0x06:
            body = pos + 9
            (clen,) = struct.unpack_from("<I", data, body + 28)
            (n,) = struct.unpack_from("<Q", data, body + 32 + clen)
            found.append((body + 40 + clen, n))
        if op == 0x02:
            break
        pos += 9 + length
    return found
