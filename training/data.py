"""Training pairs: sampling, crops with shift/scale augmentation, darkening, and the targets of each family.

Every sample is a pure function of (seed, epoch, index): its own generator draws the sequence,
frames, augmentation and night parameters. Data order therefore does not depend on the number of
DataLoader workers or DDP ranks, and a resumed run sees exactly the batches it would have seen.

The targets of each family are made by the family itself (`Family.target`, mlkd_model/families/),
beside the decoder they invert.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mlkd_model.datasets import DatasetError, Sequence, load_dataset
from mlkd_model.families import get_family
from mlkd_model.families.registry import TRAIN_SEARCH_SIZE
from mlkd_model.tracker import context_size
from mlkd_training.night import NightParams, NightRanges, crop_light_field, darken

log = logging.getLogger(__name__)

EXEMPLAR_SIZE = 127
SEARCH_SIZE = TRAIN_SEARCH_SIZE
CONTEXT_AMOUNT = 0.5  # as the trackers' configs (TrackerParams.context_amount)


@dataclass
class DataConfig:
    roots: list[str]  # dataset folders (any layout `load_dataset` reads)
    samples_per_epoch: int = 6400
    frame_range: int = 100  # search frame within +- this many frames of the template frame
    neg_prob: float = 0.2  # fraction of negative pairs (search crop from another sequence)
    template_shift: float = 4.0  # pixels of the output crop
    template_scale: float = 0.05
    search_shift: float = 64.0
    search_scale: float = 0.18
    darken: bool = True  # students see darkened crops (night simulation of training/night.py)
    clean: bool = False  # also return the clean crops (the `clean` teacher needs them)
    workers: int = 2
    max_retries: int = 10  # corrupt/unreadable frames are skipped, another pair is drawn
    pos_num: int = 16
    total_num: int = 64
    neg_num: int = 16  # labelled negatives on a negative pair
    clean_share: float = 0.0  # fraction of pairs the students see undarkened (keeps the daytime skill)
    # Widen the darkening toward milder nights: the brightness range's upper end is multiplied by this
    # (1 = the default ranges of training/night.py).
    milder: float = 1.0

    def night_ranges(self) -> NightRanges:
        base = NightRanges()
        if self.milder == 1.0:
            return base
        lo, hi = base.brightness
        return dataclasses.replace(base, brightness=(lo, hi * self.milder))


def trainable_frames(seq: Sequence) -> np.ndarray:
    """Frames whose box is finite and wider and taller than 1 px: stricter than "labelled"
    (mlkd_model.boxes), as a sub-pixel box makes a degenerate crop and target."""
    b = seq.boxes
    ok = np.isfinite(b).all(1) & (b[:, 2] > 1) & (b[:, 3] > 1)
    return np.flatnonzero(ok)


def crop(
    image: np.ndarray,
    center: tuple[float, float],
    side: float,
    out: int,
    scale_xy: tuple[float, float],
    shift_xy: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Affine crop (mean padding, as pysot): the square of `side` image pixels around `center` is
    resized to out x out, stretched by 1/scale_xy and moved by shift_xy output pixels.
    Returns (crop, 2x3 matrix image -> crop)."""
    ax = (out / side) / scale_xy[0]
    ay = (out / side) / scale_xy[1]
    c = (out - 1) / 2
    m = np.array([[ax, 0, c - ax * center[0] + shift_xy[0]], [0, ay, c - ay * center[1] + shift_xy[1]]], np.float64)
    mean = cv2.mean(image)[:3]  # the frame mean, as pysot pads; cv2.mean is ~20x faster than numpy here
    patch = cv2.warpAffine(
        image, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=mean
    )
    return patch, m


def map_box(m: np.ndarray, box_xywh: np.ndarray) -> np.ndarray:
    """x,y,w,h box in the image -> x1,y1,x2,y2 in the crop."""
    x, y, w, h = box_xywh
    sx, sy, tx, ty = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
    return np.array([sx * x + tx, sy * y + ty, sx * (x + w) + tx, sy * (y + h) + ty])


def _to_tensor(patch: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 BGR -> 3xHxW float32 0..255 BGR (the networks' input, as pysot)."""
    return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1), dtype=np.float32))


class PairDataset(Dataset):
    """Template/search pairs. Indices are (epoch, i) tuples: the sample is a pure function of (seed, epoch, i)."""

    def __init__(self, sequences: list[Sequence], family: str, cfg: DataConfig, seed: int = 0) -> None:
        self.cfg, self.family, self.seed = cfg, family, seed
        self.sequences = [s for s in sequences if len(trainable_frames(s)) >= 2]
        if not self.sequences:
            raise DatasetError("no sequence with at least two labelled frames to sample training pairs from")
        self.valid = [trainable_frames(s) for s in self.sequences]
        counts = np.array([len(v) for v in self.valid], np.float64)
        self.seq_prob = counts / counts.sum()
        self.target = get_family(family).target(cfg)

    def __len__(self) -> int:
        return self.cfg.samples_per_epoch

    def _pick(self, rng: np.random.Generator) -> tuple[int, int, int, int, bool]:
        s = int(rng.choice(len(self.sequences), p=self.seq_prob))
        frames = self.valid[s]
        t = int(frames[rng.integers(len(frames))])
        neg = bool(rng.random() < self.cfg.neg_prob) and len(self.sequences) > 1
        if neg:  # search image from another sequence: the template's object is not in it
            s2 = int(rng.choice([k for k in range(len(self.sequences)) if k != s]))
            x = int(self.valid[s2][rng.integers(len(self.valid[s2]))])
            return s, t, s2, x, True
        near = frames[np.abs(frames - t) <= self.cfg.frame_range]
        near = near[near != t] if len(near) > 1 else near
        return s, t, s, int(near[rng.integers(len(near))]), False

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        rng = np.random.default_rng([self.seed, epoch, index])
        skipped = 0
        for _ in range(self.cfg.max_retries):
            s, t, s2, x, neg = self._pick(rng)
            try:
                z_img = self.sequences[s].image(t)
                x_img = self.sequences[s2].image(x)
            except DatasetError as exc:
                skipped += 1
                log.warning("skipping unreadable frame (%s); drawing another pair", exc)
                continue
            return self._make(rng, z_img, self.sequences[s].boxes[t], x_img, self.sequences[s2].boxes[x], neg, skipped)
        raise DatasetError(f"{self.cfg.max_retries} unreadable frames in a row for sample {key}: is the data intact?")

    def _make(
        self,
        rng: np.random.Generator,
        z_img: np.ndarray,
        z_box: np.ndarray,
        x_img: np.ndarray,
        x_box: np.ndarray,
        neg: bool,
        skipped: int,
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg

        def aug(scale: float, shift: float) -> tuple[tuple[float, float], tuple[float, float]]:
            sc = tuple(float(1 + rng.uniform(-scale, scale)) for _ in range(2))
            sh = tuple(float(rng.uniform(-shift, shift)) for _ in range(2))
            return sc, sh  # type: ignore[return-value]

        zc = (z_box[0] + (z_box[2] - 1) / 2, z_box[1] + (z_box[3] - 1) / 2)
        s_z = context_size(z_box[2:], CONTEXT_AMOUNT)
        z_patch, m_z = crop(z_img, zc, s_z, EXEMPLAR_SIZE, *aug(cfg.template_scale, cfg.template_shift))
        xc = (x_box[0] + (x_box[2] - 1) / 2, x_box[1] + (x_box[3] - 1) / 2)
        s_x = context_size(x_box[2:], CONTEXT_AMOUNT) * SEARCH_SIZE / EXEMPLAR_SIZE
        x_patch, m = crop(x_img, xc, s_x, SEARCH_SIZE, *aug(cfg.search_scale, cfg.search_shift))
        box = map_box(m, x_box)
        sample = {"box": torch.from_numpy(box.astype(np.float32)), "skipped": torch.tensor(skipped)}
        if cfg.clean:
            sample["template_clean"], sample["search_clean"] = _to_tensor(z_patch), _to_tensor(x_patch)
        if cfg.darken and not (cfg.clean_share > 0 and rng.random() < cfg.clean_share):
            # One light/camera for both crops of a pair (same scene), drawn per sample for variety; each
            # crop is lit by the light field of its own frame, so the pool sits where it sits in the scene.
            night = NightParams.sample(rng, cfg.night_ranges())
            z_light = crop_light_field(m_z, EXEMPLAR_SIZE, z_img.shape, night)
            x_light = crop_light_field(m, SEARCH_SIZE, x_img.shape, night)
            z_patch = darken(z_patch, night, rng, light=z_light)
            x_patch = darken(x_patch, night, rng, light=x_light)
        sample["template"], sample["search"] = _to_tensor(z_patch), _to_tensor(x_patch)
        for k, v in self.target(box, neg, rng).items():
            sample[k] = torch.from_numpy(v)
        return sample


class ShardedBatchSampler(Sampler[list[tuple[int, int]]]):
    """This rank's share of each global batch, from `start_step` of `epoch` on.

    Global batch b of an epoch holds samples b*B .. (b+1)*B-1; rank r takes its contiguous
    B/world slice. Seeding is in the samples themselves, so no shuffling state is needed.
    """

    def __init__(self, epoch: int, steps: int, batch: int, rank: int = 0, world: int = 1, start_step: int = 0) -> None:
        if batch % world:
            raise ValueError(f"global batch {batch} is not divisible by the {world} processes")
        self.epoch, self.steps, self.batch, self.start = epoch, steps, batch, start_step
        self.per_rank, self.rank = batch // world, rank

    def __len__(self) -> int:
        return self.steps - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.steps):
            first = step * self.batch + self.rank * self.per_rank
            yield [(self.epoch, first + k) for k in range(self.per_rank)]


def build_dataset(cfg: DataConfig, family: str, seed: int) -> PairDataset:
    sequences: list[Sequence] = []
    for root in cfg.roots:
        sequences += load_dataset(root)
    frames = sum(len(s) for s in sequences)
    log.info("training pairs from %d sequences (%d frames) in %s", len(sequences), frames, cfg.roots)
    return PairDataset(sequences, family, cfg, seed)


def make_loader(
    dataset: PairDataset, sampler: ShardedBatchSampler, workers: int, pin_memory: bool = False
) -> DataLoader:
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory)
