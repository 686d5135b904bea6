"""Night simulation: turn a daytime frame into a plausible low-light UAV frame, seeded and reproducible.

The model follows the camera, in order (light -> lens -> sensor -> ISP -> encoder):
1. sRGB -> linear radiance (gamma 2.2);
2. light at night is not uniform: one pool of artificial light (a Gaussian falloff around a point, as
   under a street lamp) on top of an `ambient` level, and the colour cast of that light (per-channel
   gains, e.g. sodium lamps: red up, blue down);
3. optical / motion blur (Gaussian, before the sensor, so noise stays sharp as on a real camera);
4. exposure drop on the sensor: a white pixel collects only `photons` electrons; photon shot noise is
   Poisson in that count, read noise is Gaussian in electrons (both matter at night, where counts are small).
   By default both are drawn as one Gaussian with the same mean and variance (lambda + read_noise^2):
   faster than numpy's Poisson and the same in mean, per-pixel variance and noise level
   (tests/test_training_repairs.py compares them); `exact_noise=True` draws the Poisson counts;
5. the camera's gain maps the collected signal to `brightness` (the linear level of white; the exposure
   drop the viewer sees), then an extra tone `gamma` (>1 darkens the mid-tones as night footage does);
6. JPEG re-compression at `jpeg_quality` (smooths the noise into blocks, as in streamed UAV video).

The light pool lives in frame coordinates: a crop is darkened with the light field of the frame it was
cut from (`crop_light_field`), so a template and a search crop of one scene are lit alike, as the
whole-frame darkening of evaluation lights them.

Parameters are drawn once per sequence (`sequence_params(seed, name)`: same light and camera for every
frame); the noise is drawn per frame (`frame_rng(seed, name, index)`, independent of processing order).
Default ranges were set so darkened `shared/data/sequences` frames match the mean intensity (about 5-55
of 255) and noise level of the real night frames in `shared/data/night` (tests/test_night.py checks it).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields

import cv2
import numpy as np

SRGB_GAMMA = 2.2
# Bump when the transform's output changes for the same (params, rng): cached darkened frames are keyed by it.
TRANSFORM_VERSION = 2


@dataclass(frozen=True)
class NightRanges:
    """Closed (low, high) ranges NightParams are drawn from (uniform; `photons` log-uniform)."""

    brightness: tuple[float, float] = (0.025, 0.12)
    gamma: tuple[float, float] = (1.0, 1.4)
    photons: tuple[float, float] = (80.0, 800.0)
    read_noise: tuple[float, float] = (1.0, 4.0)
    cast_red: tuple[float, float] = (1.0, 1.35)
    cast_blue: tuple[float, float] = (0.55, 0.95)
    ambient: tuple[float, float] = (0.2, 0.6)
    light_x: tuple[float, float] = (0.1, 0.9)
    light_y: tuple[float, float] = (0.1, 0.9)
    light_radius: tuple[float, float] = (0.25, 0.6)
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    jpeg_quality: tuple[float, float] = (60.0, 90.0)


@dataclass(frozen=True)
class NightParams:
    """One sequence's light and camera.

    photons: electrons a white pixel collects under full light (lower = noisier); ambient: light level away from
    the light pool, relative to its centre; light_x, light_y: pool centre as a fraction of width and height;
    light_radius: its Gaussian radius as a fraction of the image diagonal.
    """

    brightness: float = 0.1
    gamma: float = 1.2
    photons: float = 150.0
    read_noise: float = 2.0
    cast_red: float = 1.1
    cast_blue: float = 0.8
    ambient: float = 0.4
    light_x: float = 0.5
    light_y: float = 0.5
    light_radius: float = 0.4
    blur_sigma: float = 0.5
    jpeg_quality: int = 75

    @classmethod
    def sample(cls, rng: np.random.Generator, ranges: NightRanges | None = None) -> NightParams:
        ranges = ranges or NightRanges()
        values: dict[str, float] = {}
        for f in fields(NightRanges):
            lo, hi = getattr(ranges, f.name)
            if f.name == "photons":  # noise scales with 1/sqrt(photons): spread evenly in log
                values[f.name] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            else:
                values[f.name] = float(rng.uniform(lo, hi))
        values["jpeg_quality"] = round(values["jpeg_quality"])
        return cls(**values)  # type: ignore[arg-type]


def _name_key(name: str) -> int:
    # crc32, not hash(): Python salts str hashes per process, and results must repeat across runs
    return zlib.crc32(name.encode("utf-8"))


def sequence_params(seed: int, name: str, ranges: NightRanges | None = None) -> NightParams:
    """The sequence's night parameters, a pure function of (seed, name)."""
    return NightParams.sample(np.random.default_rng([seed, _name_key(name)]), ranges)


def frame_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """Noise generator for one frame, a pure function of (seed, name, index)."""
    return np.random.default_rng([seed, _name_key(name), 1, index])


_LINEAR_LUT = ((np.arange(256, dtype=np.float32) / 255.0) ** SRGB_GAMMA).astype(np.float32)


def darken(
    image_bgr: np.ndarray,
    params: NightParams,
    rng: np.random.Generator,
    *,
    compress: bool = True,
    light: np.ndarray | None = None,
    exact_noise: bool = False,
) -> np.ndarray:
    """Darken one BGR uint8 frame; returns BGR uint8 of the same shape.

    compress=False skips the JPEG step, for callers that encode the frame themselves at params.jpeg_quality.
    light: the H x W relative illumination (default: the light field of a whole frame of this size; crops
    pass `crop_light_field`). exact_noise: Poisson shot noise instead of its Gaussian approximation.
    """
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"darken expects an HxWx3 uint8 BGR image, got {image_bgr.dtype} {image_bgr.shape}")
    if light is None:
        light = light_field(image_bgr.shape[0], image_bgr.shape[1], params)
    elif light.shape != image_bgr.shape[:2]:
        raise ValueError(f"light field {light.shape} does not match the image {image_bgr.shape[:2]}")
    linear = _LINEAR_LUT[image_bgr]
    linear *= light[:, :, None]
    linear *= np.array([params.cast_blue, 1.0, params.cast_red], dtype=np.float32)  # BGR order
    if params.blur_sigma > 0.05:
        linear = cv2.GaussianBlur(linear, (0, 0), params.blur_sigma)
    expected = np.clip(linear, 0.0, None) * np.float32(params.photons)
    if exact_noise:
        electrons = rng.poisson(expected).astype(np.float32)
        electrons += rng.normal(0.0, params.read_noise, size=electrons.shape).astype(np.float32)
    else:  # shot + read noise as one Gaussian of the same mean and variance
        noise = rng.standard_normal(size=expected.shape, dtype=np.float32)
        noise *= np.sqrt(expected + np.float32(params.read_noise**2))
        electrons = expected + noise
    out = np.clip(electrons * np.float32(params.brightness / params.photons), 0.0, 1.0)
    out = out ** (params.gamma / SRGB_GAMMA)
    result = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if compress:
        result = cv2.imdecode(encode_jpeg(result, params), cv2.IMREAD_COLOR)
    return result


def encode_jpeg(image_bgr: np.ndarray, params: NightParams) -> np.ndarray:
    """The encoder step of the simulation: JPEG bytes at the sequence's quality (decoding them is the frame)."""
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(params.jpeg_quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    return buf


def light_at(x: np.ndarray, y: np.ndarray, height: int, width: int, params: NightParams) -> np.ndarray:
    """Relative illumination at frame coordinates (x, y) of a height x width frame: `ambient` everywhere
    plus a Gaussian pool of light peaking at 1."""
    r2 = ((x - params.light_x * width) ** 2 + (y - params.light_y * height) ** 2) / float(width**2 + height**2)
    pool = np.exp(-0.5 * r2 / params.light_radius**2)
    return (params.ambient + (1.0 - params.ambient) * pool).astype(np.float32)


def light_field(height: int, width: int, params: NightParams) -> np.ndarray:
    """The light field of a whole height x width frame."""
    y, x = np.ogrid[:height, :width]
    return light_at(x, y, height, width, params)


def crop_light_field(matrix: np.ndarray, size: int, frame_shape: tuple[int, ...], params: NightParams) -> np.ndarray:
    """The frame's light field seen through an axis-aligned crop (`matrix`: 2x3 frame -> crop, no rotation)."""
    u = np.arange(size, dtype=np.float64)
    x = (u - matrix[0, 2]) / matrix[0, 0]
    y = (u - matrix[1, 2]) / matrix[1, 1]
    return light_at(x[None, :], y[:, None], frame_shape[0], frame_shape[1], params)


def noise_level(image_bgr: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (sigma, grey levels) of an image: the statistic tests compare."""
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float64)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    residual = cv2.filter2D(gray, -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.mean(np.abs(residual)) / 6.0)
