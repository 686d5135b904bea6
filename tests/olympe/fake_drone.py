"""A fake Parrot drone for the bridge tests: Olympe's own drone-side endpoint (DeviceBase) on 0.0.0.0:44444.

Run with Olympe's virtualenv, inside the tests' private network namespace only:
    .venv/olympe/bin/python tests/olympe/fake_drone.py LOG.jsonl [--ignore ardrone3.Piloting.TakeOff ...]
Answers the connection handshake (AllStates / AllSettings) and writes one JSON line per command it receives:
{"t": wall-clock s, "name": "ardrone3.Piloting.PCMD", "args": {...}}. Prints READY once listening.
--ignore NAME: never answer that command (a take-off the drone does not acknowledge).
--listen-at EPOCH: start listening only then (wall clock): a drone that comes back after booting, at a
precise time however long this process took to start.
--model: anafi4k (default: the drone the bridge is for; Olympe connects in well under a second) or generic
(Olympe's default device type, ANAFI 2: Olympe then asks for states a fake drone never sends, ~3 s each,
and connects after ~12 s).
--battery START,DRAIN: telemetry every 0.2 s (battery at START %, down by DRAIN % per second from the first
PCMD on: flying drains it; GPS position,
altitude, attitude, speed, WiFi RSSI), values fixed below so a test can check them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import olympe
import olympe_deps as od
from olympe.controllers.device import DeviceBase
from olympe.enums.ardrone3.PilotingState import FlyingStateChanged_State as flying_state
from olympe.messages import common
from olympe.messages.ardrone3.PilotingState import (
    AltitudeChanged,
    AttitudeChanged,
    FlyingStateChanged,
    PositionChanged,
    SpeedChanged,
)

MODELS = {"anafi4k": od.ARSDK_DEVICE_TYPE_ANAFI4K, "generic": od.ARSDK_DEVICE_TYPE_ANAFI_2}

olympe.log.update_config({"loggers": {"olympe": {"level": "CRITICAL"}, "ulog": {"level": "CRITICAL"}}})

REPLIES = {  # command -> (event, its arguments): what a drone answers, and what Olympe waits for
    "common.Common.AllStates": (common.CommonState.AllStatesChanged, {}),
    "common.Settings.AllSettings": (common.SettingsState.AllSettingsChanged, {}),
    "ardrone3.Piloting.TakeOff": (FlyingStateChanged, {"state": flying_state.takingoff}),
    "ardrone3.Piloting.Landing": (FlyingStateChanged, {"state": flying_state.landing}),
}


TELEMETRY = [  # (event, arguments) sent every 0.2 s besides the battery
    (PositionChanged, {"latitude": 48.8566, "longitude": 2.3522, "altitude": 135.5}),
    (AltitudeChanged, {"altitude": 12.5}),
    (AttitudeChanged, {"roll": 0.1, "pitch": -0.05, "yaw": 1.2}),
    (SpeedChanged, {"speedX": 1.0, "speedY": 0.5, "speedZ": -0.2}),
    (common.CommonState.WifiSignalChanged, {"rssi": -55}),
]


def telemetry(device, stop: threading.Event, flying: list, start: float, drain: float) -> None:
    while not stop.wait(0.2):
        percent = max(0, round(start - drain * (time.monotonic() - flying[0]))) if flying else round(start)
        try:
            device._send_command_raw(common.CommonState.BatteryStateChanged, {"percent": percent})
            for event, args in TELEMETRY:
                device._send_command_raw(event, dict(args))
        except Exception:  # not connected (yet / any more)
            pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--ignore", nargs="*", default=[], help="commands never answered")
    ap.add_argument("--battery", default="", help="START,DRAIN: send telemetry, battery draining DRAIN %%/s")
    ap.add_argument("--listen-at", type=float, default=0.0, help="wall-clock time to start listening at")
    ap.add_argument("--model", choices=MODELS, default="anafi4k", help="device type announced to Olympe")
    ns = ap.parse_args()
    out = open(ns.log, "a", buffering=1)  # line-buffered: the test reads it while we run
    device = DeviceBase(drone_type=MODELS[ns.model])
    lock = threading.Lock()
    flying: list[float] = []  # time of the first PCMD

    def on_message(event, *_a, **_k) -> None:
        name = str(event).split("(", 1)[0]
        try:
            args = {k: (v.name if hasattr(v, "name") else v) for k, v in getattr(event, "args", {}).items()}
            line = json.dumps({"t": time.time(), "name": name, "args": args}, default=str)
        except Exception as exc:  # an exception here would silently end Olympe's subscription
            line = json.dumps({"t": time.time(), "name": name, "error": repr(exc)})
        with lock:
            out.write(line + "\n")
        if name == "ardrone3.Piloting.PCMD" and not flying:
            flying.append(time.monotonic())
        if name in REPLIES and name not in ns.ignore:
            event_type, event_args = REPLIES[name]
            device._send_command_raw(event_type, dict(event_args))

    device.subscribe(on_message, None)
    time.sleep(max(0.0, ns.listen_at - time.time()))
    device.listen()
    print("READY", flush=True)
    stop = threading.Event()
    if ns.battery:
        start, drain = (float(v) for v in ns.battery.split(","))
        threading.Thread(target=telemetry, args=(device, stop, flying, start, drain), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    device.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
