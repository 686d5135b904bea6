"""Training pairs: targets of each family, determinism, sharding, and corrupt frames."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tiny_sequences import make_sequences

from mlkd_model.families.nanotrack import PointTarget, generate_points
from mlkd_model.families.siamrpn_alex import AnchorTarget, generate_anchors
from mlkd_model.params import default_params
from mlkd_model.tracker import decode
from mlkd_training.data import (
    DataConfig,
    ShardedBatchSampler,
    build_dataset,
    make_loader,
)

BOX = np.array([100.0, 110.0, 164.0, 150.0])  # x1, y1, x2, y2 in the 255 search crop


def test_anchor_target_positives_decode_to_the_box():
    cfg = DataConfig(roots=[])
    t = AnchorTarget(cfg)(BOX, False, np.random.default_rng(0))
    cls, delta = t["label_cls"], t["label_loc"]
    assert cls.shape == (5, 17, 17) and delta.shape == (20, 17, 17)
    assert 0 < (cls == 1).sum() <= 16 and (cls >= 0).sum() <= 64
    assert t["label_loc_weight"].sum() == pytest.approx(1.0, rel=1e-4)
    # the tracker's own decode (anchors relative to the crop centre) recovers the box from the targets
    params = default_params("siamrpn_alex").replace(score_size=17)
    anchors = generate_anchors(params)
    _, boxes = decode(params, np.zeros((1, 10, 17, 17), np.float32), delta[None], anchors)
    pos = np.flatnonzero(cls.reshape(-1) == 1)
    cx, cy = (BOX[0] + BOX[2]) / 2 - 127, (BOX[1] + BOX[3]) / 2 - 127
    np.testing.assert_allclose(boxes[:, pos].T, np.tile([cx, cy, 64, 40], (len(pos), 1)), atol=1e-3)


def test_point_target_ltrb_and_labels():
    t = PointTarget(DataConfig(roots=[]))(BOX, False, np.random.default_rng(0))
    cls, ltrb = t["label_cls"], t["label_loc"]
    assert cls.shape == (1, 16, 16) and ltrb.shape == (4, 16, 16)
    pos = np.argwhere(cls[0] == 1)
    assert len(pos) > 0
    params = default_params("nanotrack")
    _, boxes = decode(params, np.zeros((1, 2, 16, 16), np.float32), ltrb[None], generate_points(params))
    idx = pos[:, 0] * 16 + pos[:, 1]
    cx, cy = (BOX[0] + BOX[2]) / 2 - 127, (BOX[1] + BOX[3]) / 2 - 127
    np.testing.assert_allclose(boxes[:, idx].T, np.tile([cx, cy, 64, 40], (len(idx), 1)), atol=1e-3)
    # positives lie inside the box; negatives outside the ellipse inscribed in it (SiamBAN's rule)
    assert (ltrb[:, cls[0] == 1] > 0).all()
    target = PointTarget(DataConfig(roots=[]))
    neg = cls[0] == 0
    ell = ((target.px - 132) / 32) ** 2 + ((target.py - 130) / 20) ** 2
    assert (ell[neg] > 1).all()


def test_negative_pairs_have_no_positives():
    for target in (AnchorTarget(DataConfig(roots=[])), PointTarget(DataConfig(roots=[]))):
        t = target(BOX, True, np.random.default_rng(0))
        assert (t["label_cls"] == 1).sum() == 0 and (t["label_cls"] == 0).sum() > 0


def test_samples_are_deterministic_and_worker_independent(tmp_path):
    root = make_sequences(tmp_path)
    cfg = DataConfig(roots=[str(root)], samples_per_epoch=8, workers=0, clean=True, frame_range=3)
    ds = build_dataset(cfg, "nanotrack", seed=1)
    a, b = ds[(0, 3)], ds[(0, 3)]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(ds[(1, 3)]["search"], a["search"])  # another epoch, another sample
    assert a["search"].mean() < a["search_clean"].mean()  # darkened
    serial = [batch["search"] for batch in make_loader(ds, ShardedBatchSampler(0, 2, 4), 0)]
    parallel = [batch["search"] for batch in make_loader(ds, ShardedBatchSampler(0, 2, 4), 2)]
    for x, y in zip(serial, parallel, strict=True):
        assert torch.equal(x, y)


def test_sharded_sampler_splits_global_batches_and_resumes():
    whole = list(ShardedBatchSampler(2, 3, 4))
    r0 = list(ShardedBatchSampler(2, 3, 4, rank=0, world=2))
    r1 = list(ShardedBatchSampler(2, 3, 4, rank=1, world=2))
    assert [a + b for a, b in zip(r0, r1, strict=True)] == whole
    assert list(ShardedBatchSampler(2, 3, 4, start_step=1)) == whole[1:]
    with pytest.raises(ValueError):
        ShardedBatchSampler(0, 3, 5, world=2)


def test_corrupt_frame_is_skipped_with_warning_and_counted(tmp_path, caplog):
    root = make_sequences(tmp_path, n_seq=1, n_frames=3)
    (root / "seq0" / "img" / "000002.jpg").write_bytes(b"not a jpeg")
    cfg = DataConfig(roots=[str(root)], samples_per_epoch=40, workers=0, neg_prob=0.0, frame_range=3)
    ds = build_dataset(cfg, "siamrpn_alex", seed=0)
    with caplog.at_level(logging.WARNING):
        skipped = sum(int(ds[(0, i)]["skipped"]) for i in range(40))
    assert skipped > 0
    assert "skipping unreadable frame" in caplog.text and "000002.jpg" in caplog.text
