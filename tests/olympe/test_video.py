"""The bridge publishes the source's frames through Olympe's Pdraw: from an MP4 and over RTSP.

PSNR bound 35 dB: the test MP4 is x264 crf 16 of the JPEG frames; decoded frames score 38.7-41 dB
against their source JPEG, while consecutive source frames of otb_Crossing differ by at most 37.4 dB
(median ~32), so 35 dB tells "this exact frame, lightly compressed" from "a wrong/garbled/shifted one"
(wrong chroma layout or stride gives < 20 dB).
"""

from __future__ import annotations

import itertools
import statistics

from olympe_helpers import CROSSING, run_in_netns

PSNR_DB = 35.0
SOURCE_FRAMES = len(list((CROSSING / "img").glob("*.jpg")))
FPS = 30.0


def _check(res: dict, min_frames: int, loop: int | None = None) -> None:
    """`loop`: the source length where the video may start over (RTSP): frame steps are counted modulo it."""
    idx, psnr = res["index"], res["psnr"]
    assert res["shape"] == [240, 360, 3]
    assert res["n"] >= min_frames, res["n"]
    assert min(psnr) > PSNR_DB, f"worst PSNR {min(psnr):.1f} dB"
    gaps = [(b - a) % loop if loop else b - a for a, b in itertools.pairwise(idx)]
    assert all(g > 0 for g in gaps), f"frames out of order / repeated: {idx}"
    # Source rate: the capture stamps advance by 1/30 s per frame (and no frame is dropped in between).
    assert abs(res["stamp_dt_median"] - 1 / FPS) < 0.004, res["stamp_dt_median"]
    assert statistics.mean(gaps) < 1.1, gaps


def test_mp4_through_pdraw(olympe_venv, crossing_mp4, tmp_path):
    res = run_in_netns(
        ["video", "--video", str(crossing_mp4), "--source", str(CROSSING), "--duration", "4.5"], tmp_path
    )
    # A file waits for its subscriber: every frame arrives (Pdraw drops the very last one at end of file).
    _check(res, min_frames=115)
    assert res["index"][0] == 0


def test_rtsp_through_pdraw(olympe_venv, crossing_mp4, tmp_path):
    res = run_in_netns(
        ["video", "--rtsp", "--video", str(crossing_mp4), "--source", str(CROSSING), "--duration", "3.0"], tmp_path
    )
    # Live: frames sent before the subscriber matched are gone; the rest arrive in order at 30 fps
    # (3 s at 30 fps, minus slack). The stream ends with the file after 4 s; the bridge reconnects and the
    # server starts each new client at the file's start, so on a slow start frame 0 may follow the last one.
    _check(res, min_frames=60, loop=SOURCE_FRAMES)
