"""Night simulation: determinism, per-sequence parameters, and statistics against real night frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from shared_paths import SEQUENCES, SHARED

from mlkd_training.night import (
    NightParams,
    NightRanges,
    darken,
    frame_rng,
    noise_level,
    sequence_params,
)

NIGHT = SHARED / "data" / "night"


def _day(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(image, (0, 0), 2.0)


def test_params_depend_on_seed_and_name_only() -> None:
    a = sequence_params(1, "car14")
    assert a == sequence_params(1, "car14")
    assert a != sequence_params(2, "car14") and a != sequence_params(1, "car15")
    r = NightRanges()
    for name in ("a", "b", "c", "d"):
        p = sequence_params(7, name)
        assert r.brightness[0] <= p.brightness <= r.brightness[1]
        assert r.photons[0] <= p.photons <= r.photons[1]
        assert isinstance(p.jpeg_quality, int)


def test_darken_is_deterministic_per_frame() -> None:
    image, params = _day(), sequence_params(3, "seq")
    a = darken(image, params, frame_rng(3, "seq", 5))
    b = darken(image, params, frame_rng(3, "seq", 5))
    c = darken(image, params, frame_rng(3, "seq", 6))
    np.testing.assert_array_equal(a, b)
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.any(a != c)  # a new frame draws new noise
    assert a.mean() < image.mean() / 3


def test_noise_grows_as_photons_drop() -> None:
    image = np.full((200, 200, 3), 160, np.uint8)
    few = NightParams(photons=30.0, blur_sigma=0.0, jpeg_quality=95)
    many = NightParams(photons=3000.0, blur_sigma=0.0, jpeg_quality=95)
    rng = np.random.default_rng(0)
    assert noise_level(darken(image, few, rng)) > 2 * noise_level(darken(image, many, rng))


def test_rejects_non_uint8() -> None:
    with pytest.raises(ValueError, match="uint8"):
        darken(np.zeros((4, 4, 3), np.float32), NightParams(), np.random.default_rng(0))


def _stats(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    images = [cv2.imread(str(p)) for p in paths]
    return np.array([i.mean() for i in images]), np.array([noise_level(i) for i in images])


@pytest.mark.skipif(not (NIGHT.is_dir() and SEQUENCES.is_dir()), reason="shared data not found next to the repo")
def test_statistics_match_real_night_frames() -> None:
    from mlkd_model.datasets import load_dataset

    real = sorted((NIGHT / "uavdark135_person11").glob("*.jpg"))[::20]
    real += sorted((NIGHT / "darktrack2021_first_frames").glob("*.jpg"))[::4]
    real_mean, real_noise = _stats(real)
    sim_mean, sim_noise = [], []
    for seed in (0, 1):
        for seq in load_dataset(SEQUENCES / "train") + load_dataset(SEQUENCES / "val"):
            out = darken(seq.image(10), sequence_params(seed, seq.name), frame_rng(seed, seq.name, 10))
            sim_mean.append(out.mean())
            sim_noise.append(noise_level(out))
    sim_mean, sim_noise = np.array(sim_mean), np.array(sim_noise)
    # every darkened frame lies within the range of real night UAV frames, and the medians are alike
    assert real_mean.min() <= sim_mean.min() and sim_mean.max() <= real_mean.max(), (sim_mean, real_mean)
    assert real_noise.min() <= sim_noise.min() and sim_noise.max() <= real_noise.max(), (sim_noise, real_noise)
    assert 0.33 < np.median(sim_mean) / np.median(real_mean) < 3
    assert 0.33 < np.median(sim_noise) / np.median(real_noise) < 3
