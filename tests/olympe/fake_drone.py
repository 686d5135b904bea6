"""A fake Parrot drone for the bridge tests: Olympe's own drone-side endpoint (DeviceBase) on 0.0.0.0:44444.

Run with Olympe's virtualenv, inside the tests' private network namespace only:
    .venv/olympe/bin/python tests/olympe/fake_drone.py LOG.jsonl [--ignore ardrone3.Piloting.TakeOff ...]
Answers the connection handshake (AllStates / AllSettings) and writes one JSON line per command it receives:
{"t": wall-clock s, "name": "ardrone3.Piloting.PCMD", "args": {...}}. Prints READY once listening.
--ignore NAME: never answer that command (a take-off the drone does not acknowledge).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import olympe
from olympe.controllers.device import DeviceBase
from olympe.enums.ardrone3.PilotingState import FlyingStateChanged_State as flying_state
from olympe.messages import common
from olympe.messages.ardrone3.PilotingState import FlyingStateChanged

olympe.log.update_config({"loggers": {"olympe": {"level": "CRITICAL"}, "ulog": {"level": "CRITICAL"}}})

REPLIES = {  # command -> (event, its arguments): what a drone answers, and what Olympe waits for
    "common.Common.AllStates": (common.CommonState.AllStatesChanged, {}),
    "common.Settings.AllSettings": (common.SettingsState.AllSettingsChanged, {}),
    "ardrone3.Piloting.TakeOff": (FlyingStateChanged, {"state": flying_state.takingoff}),
    "ardrone3.Piloting.Landing": (FlyingStateChanged, {"state": flying_state.landing}),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--ignore", nargs="*", default=[], help="commands never answered")
    ns = ap.parse_args()
    out = open(ns.log, "a", buffering=1)  # line-buffered: the test reads it while we run
    device = DeviceBase()
    lock = threading.Lock()

    def on_message(event, *_a, **_k) -> None:
        name = str(event).split("(", 1)[0]
        try:
            args = {k: (v.name if hasattr(v, "name") else v) for k, v in getattr(event, "args", {}).items()}
            line = json.dumps({"t": time.time(), "name": name, "args": args}, default=str)
        except Exception as exc:  # an exception here would silently end Olympe's subscription
            line = json.dumps({"t": time.time(), "name": name, "error": repr(exc)})
        with lock:
            out.write(line + "\n")
        if name in REPLIES and name not in ns.ignore:
            event_type, event_args = REPLIES[name]
            device._send_command_raw(event_type, dict(event_args))

    device.subscribe(on_message, None)
    device.listen()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    device.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
