"""Read the messages of an mcap file front to back, as a flight recorder needs: damage is found, not skipped.

A reader that starts from the summary at the end of the file (rosbags does) loses everything when a
crash or power loss cut the file short. This scanner walks the records from the start instead:
- every complete message is returned, also those of the last chunk when it was cut (its complete records);
  the caller gets `truncated=True` to warn about;
- a chunk whose CRC (uncompressed_crc, when not 0) does not match its data raises `McapError`, so flipped
  bits are an error rather than a silently different replay.
Record layout: https://mcap.dev/spec (opcode u8, length u64, fields little-endian, strings u32-prefixed).
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END = 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F


class McapError(ValueError):
    """An mcap file whose data is corrupt (bad magic, chunk CRC mismatch, unknown compression)."""


@dataclass
class McapScan:
    """Filled while iterating: whether the file ended early, and where."""

    path: Path
    truncated: bool = False
    detail: str = ""


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return bytes(buf[pos + 4 : pos + 4 + n]).decode(), pos + 4 + n


def _decompress(compression: str, data: bytes, size: int, complete: bool) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":
        from backports import zstd  # rosbags' own dependency (compression.zstd from Python 3.14)

        return zstd.ZstdDecompressor().decompress(data) if not complete else zstd.decompress(data)
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor().decompress(data) if not complete else lz4.frame.decompress(data)
    raise McapError(f"unsupported mcap chunk compression {compression!r}")


class _Records:
    """Schemas and channels seen so far, and the messages they name."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.channels: dict[int, tuple[str, str]] = {}  # id -> (topic, message type)
        self.ended = False  # DataEnd or Footer reached: the data section is whole

    def walk(self, buf: memoryview, scan: McapScan, where: str) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, type, log time, data) of the messages in `buf`; stops at the first incomplete record."""
        pos, end = 0, len(buf)
        while pos < end:
            if end - pos < 9:
                scan.truncated, scan.detail = True, f"record header cut at {where}+{pos}"
                return
            op, length = buf[pos], struct.unpack_from("<Q", buf, pos + 1)[0]
            body = pos + 9
            if body + length > end:
                if op == OP_CHUNK:  # the cut chunk: recover its complete records
                    yield from self._chunk(buf[body:end], scan, f"{where}+{pos}", complete=False)
                scan.truncated = True
                scan.detail = scan.detail or f"record (opcode 0x{op:02x}) cut at {where}+{pos}"
                return
            rec = buf[body : body + length]
            pos = body + length
            if op == OP_SCHEMA:
                sid = struct.unpack_from("<H", rec, 0)[0]
                self.schemas[sid], _ = _string(rec, 2)
            elif op == OP_CHANNEL:
                cid, sid = struct.unpack_from("<HH", rec, 0)
                topic, _ = _string(rec, 4)
                self.channels[cid] = (topic, self.schemas.get(sid, ""))
            elif op == OP_MESSAGE:
                cid, _seq, log_time = struct.unpack_from("<HIQ", rec, 0)
                topic, msgtype = self.channels.get(cid, ("", ""))
                if not topic:
                    raise McapError(f"{scan.path}: message on unknown channel {cid} at {where}+{pos}")
                yield topic, msgtype, log_time, bytes(rec[22:])
            elif op == OP_CHUNK:
                yield from self._chunk(rec, scan, f"{where}+{pos}", complete=True)
            elif op in (OP_DATA_END, OP_FOOTER):
                self.ended = True
                return

    def _chunk(self, rec: memoryview, scan: McapScan, where: str, complete: bool) -> Iterator:
        if len(rec) < 32:
            return
        _start, _end, size, crc = struct.unpack_from("<QQQI", rec, 0)
        try:
            compression, pos = _string(rec, 28)
            (n,) = struct.unpack_from("<Q", rec, pos)
        except (struct.error, UnicodeDecodeError):
            return  # header itself cut
        data = bytes(rec[pos + 8 : pos + 8 + n])
        try:
            raw = _decompress(compression, data, size, complete)
        except McapError:
            raise
        except Exception as exc:
            if complete:
                raise McapError(f"{scan.path}: chunk at {where} does not decompress ({exc})") from exc
            return
        if complete and crc and zlib.crc32(raw) != crc:
            raise McapError(f"{scan.path}: chunk at {where} fails its CRC check (stored {crc:08x}): corrupt data")
        if complete and len(raw) != size:
            raise McapError(f"{scan.path}: chunk at {where} holds {len(raw)} bytes, its header says {size}")
        yield from self.walk(memoryview(raw), scan, f"chunk@{where}")


def scan_messages(path: str | Path, scan: McapScan | None = None) -> Iterator[tuple[str, str, int, bytes]]:
    """(topic, message type, log time ns, CDR data) in file order; see the module doc for damage handling."""
    path = Path(path)
    scan = scan or McapScan(path)
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        # mmap: a flight can be many GB; only the pages of the current record are read in.
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    head = bytes(data[: len(MAGIC)])
    if head != MAGIC:
        if MAGIC.startswith(head):
            scan.truncated, scan.detail = True, "file shorter than the mcap magic"
            return
        raise McapError(f"{path} is not an mcap file (bad magic)")
    records = _Records()
    yield from records.walk(memoryview(data)[len(MAGIC) :], scan, "data")
    if not records.ended and not scan.truncated:
        scan.truncated, scan.detail = True, "no end-of-data record (the recorder did not close the file)"
