"""A tracker that fails on demand, in a real node process: imported by sitecustomize when the environment
variable MLKD_TEST_TRACK_FAULT names a file; while that file exists, SiameseTracker.track raises (as a GPU
or driver error would, which cannot be produced for real here)."""

import os

from mlkd_model.tracker import SiameseTracker

_FLAG = os.environ["MLKD_TEST_TRACK_FAULT"]
_track = SiameseTracker.track


def _failing_track(self, frame, color="bgr"):
    if os.path.exists(_FLAG):
        raise RuntimeError("injected tracker failure")
    return _track(self, frame, color)


SiameseTracker.track = _failing_track
