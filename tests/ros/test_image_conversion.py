"""sensor_msgs/Image <-> numpy: encodings, step padding, zero-copy receive, fast send, clear errors; the size of
JPEG / PNG frames from their header, and the pixel cap that refuses a frame before decoding it."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from mlkd_ros.image_conversion import (
    ImageConversionError,
    encoded_size,
    image_size,
    image_to_numpy,
    image_view,
    numpy_to_image,
)

RNG = np.random.default_rng(0)
BGR = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def padded(frame: np.ndarray, encoding: str, pad: int) -> Image:
    """A message whose rows carry `pad` junk bytes, as some camera drivers send."""
    rows = frame.reshape(frame.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding=encoding, step=rows.shape[1] + pad)
    msg.is_bigendian = frame.dtype.byteorder == ">"
    msg.data = array.array("B", np.hstack([rows, junk]).tobytes())
    return msg


@pytest.mark.parametrize(
    "encoding,frame,color",
    [("bgr8", BGR, "bgr"), ("rgb8", BGR[:, :, ::-1], "rgb"), ("mono8", BGR[:, :, 0], "gray")],
)
@pytest.mark.parametrize("pad", [0, 5])
def test_round_trip_and_zero_copy(encoding, frame, color, pad):
    msg = numpy_to_image(np.ascontiguousarray(frame), encoding) if pad == 0 else padded(frame, encoding, pad)
    out, got_color = image_to_numpy(msg)
    assert got_color == color
    np.testing.assert_array_equal(out, frame)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8)), "receive must not copy"


def test_four_channel_encodings_drop_alpha():
    bgra = np.dstack([BGR, np.full(BGR.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(bgra, "bgra8"))[0], BGR)
    rgba = np.ascontiguousarray(bgra[:, :, [2, 1, 0, 3]])
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(rgba, "rgba8"))[0], BGR)


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_variants(encoding):
    # Left half dark, right half bright, neutral chroma: expect gray levels in the same places.
    y = np.where(np.arange(8) < 4, 40, 200).astype(np.uint8)[None].repeat(6, 0)
    uv = np.full_like(y, 128)
    packed = np.empty((6, 8, 2), np.uint8)
    luma_first = encoding in ("yuv422_yuy2", "yuyv")
    packed[:, :, 0 if luma_first else 1] = y
    packed[:, :, 1 if luma_first else 0] = uv
    frame, color = image_to_numpy(padded(packed, encoding, 3))
    expected = cv2.cvtColor(y, cv2.COLOR_GRAY2BGR).astype(int)
    assert color == "bgr" and frame.shape == (6, 8, 3)
    assert np.abs(frame.astype(int) - expected).max() <= 25  # limited-range BT.601 shifts levels a little
    assert frame[:, :4].mean() < frame[:, 4:].mean() - 100


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_scaled_to_8_bit(bigendian):
    depth = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000
    data = depth.astype(">u2" if bigendian else "<u2")
    msg = Image(height=6, width=8, encoding="mono16", step=16, is_bigendian=bigendian)
    msg.data = array.array("B", data.tobytes())
    frame, color = image_to_numpy(msg)
    assert color == "gray" and frame.dtype == np.uint8
    assert frame[0, 0] == 0 and frame[-1, -1] == 255 and (np.diff(frame.ravel().astype(int)) >= 0).all()
    assert image_view(padded(data, "mono16", 4)).tolist() == depth.tolist()


@pytest.mark.parametrize(
    "fields,text",
    [
        ({"encoding": "bayer_rggb8"}, "unsupported image encoding"),
        ({"step": 8 * 3 - 1}, "smaller than width"),
        ({"step": 8 * 3 + 2}, "needs step x height"),
        ({"height": 7}, "needs step x height"),
        ({"width": 0, "step": 0}, "no pixels"),
    ],
)
def test_bad_messages_raise_clear_errors(fields, text):
    msg = numpy_to_image(BGR, "bgr8")
    for k, v in fields.items():
        setattr(msg, k, v)
    with pytest.raises(ImageConversionError, match=text):
        image_to_numpy(msg)


def test_odd_width_yuv_rejected():
    msg = Image(height=2, width=3, encoding="yuyv", step=6)
    msg.data = array.array("B", bytes(12))
    with pytest.raises(ImageConversionError, match="even width"):
        image_to_numpy(msg)


def test_send_takes_rclpy_fast_path():
    """msg.data is an array('B'): rclpy's setter stores it as is, where bytes, lists or numpy arrays are
    checked element by element (~100 ms for a VGA frame; benchmarks/ measures the speed, not this test)."""
    frame = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    msg = numpy_to_image(frame)
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    assert msg.step == 640 * 3 and msg.data.tobytes() == frame.tobytes()


def _encoded(frame: np.ndarray, ext: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, frame, list(params))
    assert ok
    return buf.tobytes()


def _with_thumbnail(jpeg: bytes, thumb: bytes) -> bytes:
    """An APP1 segment holding another JPEG (as EXIF thumbnails do) between SOI and the rest."""
    body = b"Exif\x00\x00" + thumb
    return jpeg[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


@pytest.mark.parametrize("shape", [(6, 8, 3), (37, 1001), (2000, 3, 3)])
def test_size_from_the_header_alone(shape):
    img = RNG.integers(0, 256, shape, dtype=np.uint8)
    thumb = _encoded(np.zeros((4, 4, 3), np.uint8), ".jpg")
    cases = {
        "jpeg": _encoded(img, ".jpg"),
        "jpeg progressive": _encoded(img, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "jpeg with a thumbnail": _with_thumbnail(_encoded(img, ".jpg"), thumb),
        "png": _encoded(img, ".png"),
    }
    for name, data in cases.items():
        codec = name.split()[0]
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2] == shape[:2], name
        assert encoded_size(data, codec) == shape[:2], name
        assert image_size(CompressedImage(format=codec, data=data)) == shape[:2], name
    assert image_size(numpy_to_image(img if img.ndim == 3 else img[:, :, None].repeat(3, 2))) == shape[:2]
    for codec, data in (("jpeg", cases["jpeg"][:20]), ("png", cases["png"][:20])):
        with pytest.raises(ImageConversionError, match="size unknown"):
            encoded_size(data, codec)
        assert image_size(CompressedImage(format=codec, data=data)) is None


def test_frames_above_max_pixels_are_refused_before_decoding():
    img = RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for fmt, ext in (("jpeg", ".jpg"), ("png", ".png")):
        msg = CompressedImage(format=fmt, data=_encoded(img, ext))
        assert image_to_numpy(msg, max_pixels=2000)[0].shape == (40, 50, 3)
        with pytest.raises(ImageConversionError, match="50x40 = 2000 pixels, above max_image_pixels 1999"):
            image_to_numpy(msg, max_pixels=1999)
    raw = numpy_to_image(img)
    assert image_to_numpy(raw, max_pixels=2000)[0].shape == (40, 50, 3)
    with pytest.raises(ImageConversionError, match="above max_image_pixels 1999"):
        image_to_numpy(raw, max_pixels=1999)
    # A PNG header claiming 16000x16000 (768 MB decoded): refused by default, without decoding.
    png = bytearray(_encoded(img, ".png"))
    png[16:24] = (16000).to_bytes(4, "big") * 2
    with pytest.raises(ImageConversionError, match="16000x16000"):
        image_to_numpy(CompressedImage(format="png", data=bytes(png)))
