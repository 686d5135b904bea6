"""The tracker-family registry: lookups, refusals, and a third family added by one class alone."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from mlkd_model.families import family_names, get_family, registry
from mlkd_model.families.nanotrack import NanoTrack
from mlkd_model.params import TrackerParams, default_params
from mlkd_model.tracker import decode


def test_builtin_families_and_unknown_names():
    assert set(family_names()) >= {"nanotrack", "siamrpn_alex"}
    with pytest.raises(ValueError, match="unknown tracker family 'hift'"):
        get_family("hift")
    with pytest.raises(ValueError, match="unknown tracker family"):
        default_params("hift")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(NanoTrack)


def test_anchor_family_needs_anchors():
    with pytest.raises(ValueError, match="anchor-based family needs"):
        default_params("siamrpn_alex").replace(anchor_ratios=[])


def test_a_third_family_is_one_class():
    class Toy(NanoTrack):  # anchor-free geometry of NanoTrack, its own name and defaults
        name = "toy_test_family"
        defaults: ClassVar[dict] = {**NanoTrack.defaults, "instance_size": 271, "score_size": 17}

    registry.register(Toy)
    try:
        params = default_params("toy_test_family")
        assert isinstance(params, TrackerParams) and params.instance_size == 271
        prior = get_family(params.family).prior(params)
        assert prior.shape == (17 * 17, 2)
        ltrb = np.full((1, 4, 17, 17), 8.0, np.float32)
        _, boxes = decode(params, np.zeros((1, 2, 17, 17), np.float32), ltrb, prior)
        np.testing.assert_allclose(boxes[2:], 16.0)  # w = left + right, h = top + bottom
    finally:
        registry._FAMILIES.pop("toy_test_family", None)
