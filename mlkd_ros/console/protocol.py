"""Messages a browser may send (JSON text over the WebSocket), checked before anything reaches ROS.

    {"type": "init", "id": 7, "box": [x, y, w, h], "stamp": [sec, nanosec], "frame_id": "camera_optical_frame"}
    {"type": "reset" | "land" | "hover", "id": 8}
    {"type": "follow" | "arm", "id": 9, "enable": true}
    {"type": "takeoff", "id": 10, "confirm": true}
    {"type": "ack"}   (a video frame was shown: the server sends the next one; flow control, not a command)

Anything else gets an error reply naming the problem; the connection and the node carry on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

MAX_MESSAGE_BYTES = 4096
COMMANDS = ("init", "reset", "follow", "arm", "takeoff", "land", "hover")
ACK = "ack"


class ProtocolError(ValueError):
    """A browser message that is not a valid command."""


@dataclass(frozen=True)
class Command:
    kind: str
    id: int | None
    enable: bool | None = None
    box: tuple[float, float, float, float] | None = None
    stamp: tuple[int, int] | None = None
    frame_id: str = ""

    def describe(self) -> str:
        if self.kind == "init":
            return f"init box {[round(v, 1) for v in self.box]} on frame {self.stamp[0]}.{self.stamp[1]:09d}"
        return self.kind if self.enable is None else f"{self.kind} {'on' if self.enable else 'off'}"


def _int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def parse(text: str) -> Command:
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message too large ({len(text.encode())} bytes > {MAX_MESSAGE_BYTES})")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message must be a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    if kind == ACK:
        return Command(ACK, None)
    if kind not in COMMANDS:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {', '.join(COMMANDS)}")
    cid = None if msg.get("id") is None else _int(msg["id"], "id", 0, 2**53)
    if kind in ("follow", "arm"):
        if not isinstance(msg.get("enable"), bool):
            raise ProtocolError(f"{kind} needs 'enable': true or false")
        return Command(kind, cid, enable=msg["enable"])
    if kind == "takeoff" and msg.get("confirm") is not True:
        raise ProtocolError("takeoff needs 'confirm': true (the page asks the operator first)")
    if kind != "init":
        return Command(kind, cid)
    box = msg.get("box")
    if not isinstance(box, list) or len(box) != 4 or not all(type(v) in (int, float) for v in box):
        raise ProtocolError(f"init needs 'box': [x, y, w, h] (4 numbers), got {box!r}")
    if not all(math.isfinite(v) for v in box) or box[2] < 1 or box[3] < 1:
        raise ProtocolError(f"init box must be finite with w, h >= 1 pixel, got {box}")
    stamp = msg.get("stamp")
    if not isinstance(stamp, list) or len(stamp) != 2:
        raise ProtocolError("init needs 'stamp': [sec, nanosec] of the frame on screen")
    sec, nsec = _int(stamp[0], "stamp sec", 0, 2**31 - 1), _int(stamp[1], "stamp nanosec", 0, 999_999_999)
    frame_id = msg.get("frame_id", "")
    if not isinstance(frame_id, str) or len(frame_id) > 256:
        raise ProtocolError("frame_id must be a string (at most 256 characters)")
    return Command(kind, cid, box=tuple(float(v) for v in box), stamp=(sec, nsec), frame_id=frame_id)
