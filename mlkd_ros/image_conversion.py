"""sensor_msgs/Image and CompressedImage <-> numpy without cv_bridge (not available as a wheel).

Receive is zero-copy where the layout allows it (`np.frombuffer` over the message buffer, `step`
padding sliced away as a view); colour conversion copies only when the encoding needs it.
Send hands over the bytes in an `array.array("B")`: rclpy's `data` setter checks a numpy array
(~100 ms for 640x480) or even `bytes` (~9 ms) element by element, but takes an `array.array` of
type "B" as is, so the frame costs a single memcpy.
CompressedImage follows image_transport's `compressed` plugin: topic `<image topic>/compressed`, format
"jpeg" / "png" or "<raw encoding>; jpeg compressed <encoding>"; JPEG (or PNG) bytes decoded by OpenCV.
cv2.imdecode has no useful size cap (a 750 KB PNG decodes to 768 MB), so the width and height are read
from the PNG / JPEG header first and a frame above `max_pixels` is refused before it is decoded.
"""

from __future__ import annotations

import array
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # imported where messages are built: mlkd_ros.bag decodes bag frames without rclpy
    from sensor_msgs.msg import CompressedImage, Image


class ImageConversionError(ValueError):
    """An Image message that cannot be turned into a frame (encoding, size, step)."""


# encoding -> (channels, bytes per channel). ROS "yuv422" is UYVY; "yuv422_yuy2" is YUYV.
_LAYOUT: dict[str, tuple[int, int]] = {
    "bgr8": (3, 1),
    "rgb8": (3, 1),
    "mono8": (1, 1),
    "8UC1": (1, 1),
    "8UC3": (3, 1),
    "bgra8": (4, 1),
    "rgba8": (4, 1),
    "mono16": (1, 2),
    "16UC1": (1, 2),
    "yuv422": (2, 1),
    "uyvy": (2, 1),
    "yuv422_yuy2": (2, 1),
    "yuyv": (2, 1),
}
# The tracker takes bgr / rgb / gray; everything else is converted to bgr.
_CVT = {
    "bgra8": cv2.COLOR_BGRA2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "yuv422": cv2.COLOR_YUV2BGR_UYVY,
    "uyvy": cv2.COLOR_YUV2BGR_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUYV,
    "yuyv": cv2.COLOR_YUV2BGR_YUYV,
}
SUPPORTED_ENCODINGS = tuple(_LAYOUT)
# Frames above this many pixels are refused (4096 x 4096: 4K video fits, 50 MB decoded as BGR).
MAX_IMAGE_PIXELS = 16_777_216
# JPEG start-of-frame markers (they carry the size): 0xC0-0xCF except DHT, JPG and DAC.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _check_pixels(h: int, w: int, max_pixels: int | None, what: str) -> None:
    if max_pixels is not None and h * w > max_pixels:
        raise ImageConversionError(
            f"{what} is {w}x{h} = {h * w} pixels, above max_image_pixels {max_pixels}: refused before decoding"
        )


def _jpeg_size(buf: memoryview) -> tuple[int, int]:
    """(height, width) from the first start-of-frame segment, walking the marker segments before it."""
    i, n = 2, len(buf)  # after SOI
    while i + 4 <= n:
        if buf[i] != 0xFF:
            break
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no size came first
            break
        length = buf[i + 2] << 8 | buf[i + 3]
        if marker in _SOF and i + 9 <= n and length >= 7:
            h, w = buf[i + 5] << 8 | buf[i + 6], buf[i + 7] << 8 | buf[i + 8]
            if h and w:
                return h, w
            break
        i += 2 + length
    raise ImageConversionError("cannot decode the JPEG data: no readable frame header (size unknown)")


def encoded_size(data, codec: str) -> tuple[int, int]:
    """(height, width) of PNG or JPEG bytes from their header alone (nothing is decoded)."""
    buf = memoryview(np.frombuffer(data, dtype=np.uint8))
    if codec == "png":
        if len(buf) < 24 or bytes(buf[12:16]) != b"IHDR":
            raise ImageConversionError("cannot decode the PNG data: no IHDR header (size unknown)")
        w, h = int.from_bytes(buf[16:20], "big"), int.from_bytes(buf[20:24], "big")
        return h, w
    return _jpeg_size(buf)


def _codec(msg: CompressedImage) -> str:
    """jpeg / jpg / png from a format such as "png" or "bgr8; jpeg compressed bgr8"."""
    fmt = msg.format.strip().lower()
    return fmt.split(";", 1)[1].split()[0] if ";" in fmt else fmt


def image_size(msg: Image | CompressedImage) -> tuple[int, int] | None:
    """(height, width) of a frame without decoding it; None when a compressed header cannot be read."""
    if not hasattr(msg, "format"):
        return int(msg.height), int(msg.width)
    try:
        return encoded_size(msg.data, _codec(msg))
    except ImageConversionError:
        return None


def image_view(msg: Image, max_pixels: int | None = MAX_IMAGE_PIXELS) -> np.ndarray:
    """The message's pixels as an HxWxC (or HxW) array viewing `msg.data` (no copy), padding removed."""
    enc = msg.encoding
    if enc not in _LAYOUT:
        raise ImageConversionError(f"unsupported image encoding {enc!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    channels, depth = _LAYOUT[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * channels * depth
    if h <= 0 or w <= 0:
        raise ImageConversionError(f"image has no pixels: {w}x{h}")
    _check_pixels(h, w, max_pixels, f"image ({enc})")
    if enc in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv") and w % 2:
        raise ImageConversionError(f"{enc} needs an even width, got {w}")
    if step < row:
        raise ImageConversionError(f"step {step} is smaller than width x bytes per pixel = {row} ({enc}, {w}x{h})")
    data = msg.data
    size = len(data)
    if size != step * h:
        raise ImageConversionError(
            f"image data is {size} bytes but {enc} {w}x{h} with step {step} needs step x height = {step * h}"
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    rows = buf.reshape(h, step)[:, :row]
    if depth == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        # Rows stay strided views; frombuffer on a sliced view would need a copy, a view cast does not.
        return rows.view(dtype) if step == row else np.ascontiguousarray(rows).view(dtype)
    return rows.reshape(h, w, channels) if channels > 1 else rows


def compressed_to_numpy(msg: CompressedImage, max_pixels: int | None = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """(frame, "bgr" | "gray") from a JPEG or PNG CompressedImage (rclpy or rosbags typestore message);
    damaged data or a size above `max_pixels` (read from the header: nothing is decoded) -> ImageConversionError."""
    fmt = msg.format.strip().lower()
    codec = _codec(msg)
    if codec not in ("jpeg", "jpg", "png"):
        raise ImageConversionError(f"unsupported CompressedImage format {msg.format!r}; supported: jpeg, png")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if codec == "png":
        ok = buf[:8].tobytes() == b"\x89PNG\r\n\x1a\n"
    else:
        # OpenCV decodes a JPEG cut short without complaint (grey bottom rows): require start and end markers.
        ok = buf[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" in buf[-16:].tobytes()
    if not ok:
        raise ImageConversionError(f"CompressedImage data ({len(buf)} bytes) is not a complete {codec} image")
    _check_pixels(*encoded_size(buf, codec), max_pixels, f"CompressedImage {codec}")
    gray = fmt.startswith(("mono", "8uc1"))
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise ImageConversionError(f"cannot decode the {codec} data of a CompressedImage ({len(buf)} bytes)")
    return img, "gray" if gray else "bgr"


def numpy_to_compressed(frame: np.ndarray, quality: int = 90, header=None) -> CompressedImage:
    """A BGR (or gray) frame -> JPEG CompressedImage, format as image_transport's compressed plugin writes it."""
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageConversionError(f"cannot encode a {frame.shape} {frame.dtype} frame as JPEG")
    from sensor_msgs.msg import CompressedImage

    enc = "mono8" if frame.ndim == 2 else "bgr8"
    msg = CompressedImage(format=f"{enc}; jpeg compressed {enc}")
    if header is not None:
        msg.header = header
    data = array.array("B")
    data.frombytes(jpeg.tobytes())
    msg.data = data
    return msg


def image_to_numpy(msg: Image | CompressedImage, max_pixels: int | None = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """(frame, color) for the tracker: color is "bgr", "rgb" or "gray" (see mlkd_model.frames.to_bgr);
    a frame above `max_pixels` (None: no cap) is refused before any conversion."""
    if hasattr(msg, "format"):  # CompressedImage
        return compressed_to_numpy(msg, max_pixels)
    arr = image_view(msg, max_pixels)
    enc = msg.encoding
    if enc in ("bgr8", "8UC3"):
        return arr, "bgr"
    if enc == "rgb8":
        return arr, "rgb"
    if enc in ("mono8", "8UC1"):
        return arr, "gray"
    if enc in ("mono16", "16UC1"):
        # Scale by the frame's own range: thermal / night sensors rarely fill 16 bits.
        a = arr.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return scaled.astype(np.uint8), "gray"
    return cv2.cvtColor(np.ascontiguousarray(arr), _CVT[enc]), "bgr"


def numpy_to_image(frame: np.ndarray, encoding: str = "bgr8", header=None) -> Image:
    """Build an Image message (data as bytes, step without padding)."""
    if encoding not in _LAYOUT:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}")
    from sensor_msgs.msg import Image

    channels, depth = _LAYOUT[encoding]
    if encoding in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv"):
        h, w = frame.shape[0], frame.shape[1]
    else:
        h, w = frame.shape[:2]
    expected_ch = frame.shape[2] if frame.ndim == 3 else 1
    if expected_ch != channels or frame.itemsize != depth:
        raise ImageConversionError(
            f"{encoding} needs {channels} channel(s) of {depth} byte(s), got shape {frame.shape} dtype {frame.dtype}"
        )
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(h), int(w)
    msg.encoding = encoding
    msg.is_bigendian = bool(frame.dtype.byteorder == ">")
    msg.step = int(w * channels * depth)
    data = array.array("B")
    data.frombytes(memoryview(np.ascontiguousarray(frame)).cast("B"))
    msg.data = data
    return msg
