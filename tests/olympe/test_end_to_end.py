"""End to end, in a private network namespace: fake drone (Olympe DeviceBase) + GStreamer RTSP server +
launch/ground_station.launch.xml (bridge, tracker, follow controller); then the recorded flight replayed.

One scenario run (module fixture, ~45 s) feeds the assertions below:
- nothing reaches the drone before arming, even with tracking and following enabled;
- armed, the yaw command has the sign of the target's horizontal offset and grows with it (rank correlation);
- killing the RTSP server: commands are hover within the timeouts; restarting it: the bridge reconnects,
  the tracker (which dropped the track after the gap) publishes no box and nothing moves until the
  operator re-inits and re-enables, then tracking resumes on the target; killing the tracker: hover;
- the flight recorded meanwhile (`mlkd record`) replays through the tracker node and offline, with the
  CLE plot, CSV and numbers next to the bag.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from olympe_helpers import CROSSING, run_in_netns
from scenario import Thumbs

from mlkd_model.cli import main as mlkd
from mlkd_ros.bag import read_frames
from mlkd_ros.boxes import load_ground_truth

# follow controller timeout (0.5 s, launch/follow_controller.yaml) + bridge cmd_vel_timeout (0.5 s) + slack
HOVER_WITHIN_S = 1.5
CENTER = np.array([[1, 0], [0, 1], [0.5, 0], [0, 0.5]])  # x,y,w,h @ CENTER = box centre


@pytest.fixture(scope="module")
def e2e(olympe_venv, tmp_path_factory) -> tuple[dict, Path]:
    work = tmp_path_factory.mktemp("e2e")
    return run_in_netns(["e2e", "--source", str(CROSSING)], work, timeout=240), work


def test_nothing_before_arming(e2e):
    res, _ = e2e
    assert res["boxes_before_arm"] > 20  # tracking and following were running...
    assert res["pcmd_before_arm"] == 0  # ...but not one piloting command reached the drone
    assert res["arm"] == [True, "armed"]


def test_turns_toward_target(e2e):
    res, _ = e2e
    pairs = np.array(res["pairs"])  # offset px (target right of center > 0), yaw, roll, pitch, gaz
    assert len(pairs) > 60
    offset, yaw = pairs[:, 0], pairs[:, 1]
    clear = np.abs(offset) > 25  # outside the follow controller's deadband, with margin for its lag
    assert clear.sum() > 30
    signs_agree = np.sign(yaw[clear]) == np.sign(offset[clear])
    # After the target crosses the centre the yaw ramps through zero (the acceleration limit), so a few
    # small commands may still point the old way; a sign error would turn every one of them the wrong way.
    firm = np.abs(yaw[clear]) >= 5  # percent of max yaw rate
    assert np.all(signs_agree[firm]), ("Parrot yaw > 0 turns right, toward x > 0", pairs[clear][firm & ~signs_agree])
    assert signs_agree.mean() > 0.9, pairs[clear][~signs_agree]
    assert np.all(pairs[:, 2] == 0)  # the follow controller never strafes
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(offset), rank(yaw))[0, 1] > 0.9  # monotonic relation (Spearman)
    assert np.abs(yaw).max() <= 50  # the bridge's max_yaw cap


def test_tracking_is_on_target(e2e):
    res, _ = e2e
    cle = np.array(res["tracking_cle"])
    assert len(cle) > 100 and np.median(cle) < 10 and np.mean(cle < 20) > 0.95


def test_hover_when_video_stops_then_reconnect_resumes_tracking(e2e):
    res, _ = e2e
    assert res["video_stop_last_move_s"] < HOVER_WITHIN_S
    assert res["video_stop_pcmds"] > 0  # still armed: explicit hover commands, not silence
    assert res["video_stop_bridge"]["video_state"] in ("connecting", "reconnecting")
    assert res["boxes_before_reinit"] == 0 and res["moving_before_reinit"] == 0, res
    assert res["tracker_after_gap"]["state"] == "lost", res["tracker_after_gap"]
    assert res["resume_s"] < 10
    cle = np.array(res["resume_cle"])
    assert len(cle) > 30 and np.mean(cle < 20) > 0.9, cle
    assert res["moving_again"] > 0


def test_hover_when_tracker_stops(e2e):
    res, _ = e2e
    assert res["moving_before_tracker_stop"] > 0  # it was steering when the tracker went away
    assert res["tracker_stop_last_move_s"] < HOVER_WITHIN_S


def test_takeoff_land_emergency_hover(e2e):
    res, _ = e2e
    assert res["takeoff"] == [True, "TakeOff acknowledged"]
    assert res["land"] == [True, "Landing acknowledged"]
    assert res["drone_commands"] == ["ardrone3.Piloting.TakeOff", "ardrone3.Piloting.Landing"]
    assert res["emergency_hover"][0] is True
    assert res["after_emergency"] == []  # disarmed: the bridge stopped sending PCMD altogether
    assert res["armed_after_emergency"] == "false"


def test_recorded_flight_replays_with_cle(e2e):
    _, work = e2e
    bag = work / "flight"
    gt_src = load_ground_truth(CROSSING / "groundtruth_rect.txt")
    thumbs = Thumbs(CROSSING)  # which source frame each recorded frame is -> its ground truth
    frames = list(read_frames(bag))
    assert len(frames) > 90  # ~4 s at 30 fps recorded
    gt = np.array([gt_src[thumbs.index(img)] for _, img in frames])
    gt_file = work / "flight_gt.txt"
    np.savetxt(gt_file, gt, fmt="%.2f", delimiter=",")
    rep = run_in_netns(["replay", "--bag", str(bag), "--gt", str(gt_file)], work / "replay_work", timeout=180)
    n = len(frames)
    assert rep["launch"]["rc"] == 0 and rep["cli"]["rc"] == 0, rep
    assert rep["launch"]["cle_lines"] > 0.8 * n and rep["cli"]["cle_lines"] > 0.5 * n, rep
    # Recorded timing is kept: the 30 fps flight cannot play faster than it was recorded (a lower bound only;
    # upper bounds on wall time, which include process start-up and DDS discovery, are left to the load).
    assert rep["launch"]["play_s"] > 0.9 * n / 30, rep
    csvs = [f"replayed={rep['launch']['cle_csv']}", f"replayed 2x={rep['cli']['cle_csv']}"]
    assert (
        mlkd(["replay", str(bag), "--gt", str(gt_file), "--offline", "--cle-csv", csvs[0], "--cle-csv", csvs[1]]) == 0
    )
    summary = json.loads((work / "flight_cle.json").read_text())
    for name in ("MLKD-Track", "replayed", "replayed 2x", "recorded (live)"):
        assert summary[name]["frames_scored"] == n and summary[name]["frames_excluded"] == 0, (name, summary[name])
    # The live tracker followed the target through the flight. It may have skipped frames (the summary counts
    # each as a miss), and how many depends on the machine's load (precision 0.36 seen with a full suite beside
    # it): so the tracking check is on the frames it did publish a box for, and their share is only a floor.
    assert summary["recorded (live)"]["mean_cle_px"] < 10
    rows = list(csv.DictReader((work / "flight_cle.csv").open()))
    live = np.array([float(r["recorded (live)_cle"] or "nan") for r in rows])
    published = ~np.isnan(live)
    assert published.mean() > 0.25, published.mean()
    assert np.mean(live[published] < 20) > 0.8, np.round(live[published], 1)
    # A replay reproduces the offline run over the same frames from the same init box: where the tracker node
    # tracked a frame, its box is the offline one, exactly when it skipped none (the 2x replay may skip a few,
    # which moves later boxes by some pixels): centres within the 20 px precision threshold.
    # Whether the tracker holds the target through a given 4 s of the clip is not the replay's business (played
    # backwards from frame ~58 it drifts, offline too); the evaluation tests measure accuracy.
    centers = {
        name: np.array([[float(r[f"{name}_{k}"] or "nan") for k in "xywh"] for r in rows]) @ CENTER
        for name in ("MLKD-Track", "replayed", "replayed 2x")
    }
    for name in ("replayed", "replayed 2x"):
        tracked = ~np.isnan(centers[name][:, 0])
        gap = np.linalg.norm(centers[name] - centers["MLKD-Track"], axis=1)[tracked]
        assert np.mean(gap < 20) > 0.9, (name, np.round(gap, 1))
    assert (work / "flight_cle.png").stat().st_size > 10_000 and (work / "flight_cle.csv").exists()
