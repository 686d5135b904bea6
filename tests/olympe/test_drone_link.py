"""The drone link's logic (mlkd_ros/drone_link.py) with a stand-in controller: no Olympe, no ROS, no network.

The stand-in behaves as Olympe's controller does where it matters here: a controller whose connect failed
stays in an 'Error' state and refuses every later connect; stop_piloting() blocks ~0.1 s (Olympe sleeps in
it); a command returns an expectation whose wait(timeout) blocks until acknowledged or timed out.
"""

from __future__ import annotations

import threading
import time

import pytest

from mlkd_ros.drone_link import DroneLink
from mlkd_ros.piloting import PilotingGate, PilotingLimits

BACKOFF = (0.02, 2.0, 0.16)  # the bridge's 1, 2, 4, 8, 10 s, scaled down


class World:
    """The drone (up or not, how its next connects go) and every controller the link made."""

    def __init__(self) -> None:
        self.up = True
        self.refuse_connects = 0  # the next N connects fail although the drone is up
        self.stop_s = 0.1
        self.start_gate = threading.Event()
        self.start_gate.set()
        self.controllers: list[StandIn] = []
        self.probes: list[float] = []  # when the link looked for the drone
        self.events: list[tuple[str, int]] = []  # (what, controller index), in order
        self.lock = threading.Lock()

    def reachable(self) -> bool:
        self.probes.append(time.monotonic())
        return self.up

    def make(self) -> StandIn:
        c = StandIn(self, len(self.controllers))
        self.controllers.append(c)
        return c

    def log(self, what: str, c: StandIn) -> None:
        with self.lock:
            self.events.append((what, c.index))

    def drop(self, stays_up: bool = False) -> None:
        """Every link to the drone is gone; the drone goes away too unless `stays_up` (a WiFi blip)."""
        self.up = stays_up
        for c in self.controllers:
            c.connected = False


class Expectation:
    def __init__(self, acked: bool) -> None:
        self.acked = acked

    def wait(self, timeout: float) -> Expectation:
        if not self.acked:
            time.sleep(timeout)
        return self

    def success(self) -> bool:
        return self.acked


class StandIn:
    def __init__(self, world: World, index: int) -> None:
        self.world, self.index = world, index
        self.connected = self.error = self.destroyed = False
        self.command = (0, 0, 0, 0)
        self.sent: list[str] = []

    def connect(self, *, retry: int = 1) -> bool:
        w = self.world
        if self.error or self.destroyed or not w.up or w.refuse_connects:
            w.refuse_connects = max(0, w.refuse_connects - 1)
            self.error = True  # Olympe: "Cannot connect ... as is because the device is in an 'Error' state"
            return False
        self.connected = True
        return True

    def disconnect(self) -> bool:
        self.connected = False
        return True

    def destroy(self) -> None:
        self.destroyed = True
        self.world.log("destroy", self)

    def start_piloting(self) -> bool:
        self.world.start_gate.wait(5)
        self.world.log("start", self)
        return True

    def stop_piloting(self) -> bool:
        time.sleep(self.world.stop_s)
        self.world.log("stop", self)
        return True

    def piloting(self, roll: int, pitch: int, yaw: int, gaz: int, piloting_time: float) -> bool:
        self.command = (roll, pitch, yaw, gaz)
        return True

    def __call__(self, message: str) -> Expectation:
        self.sent.append(message)
        return Expectation(acked=not message.endswith("-ignored"))


def wait_until(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


@pytest.fixture
def rig():
    world = World()
    details: list[tuple[str, str]] = []
    gate = PilotingGate(PilotingLimits(), timeout=10.0)
    hovers: list[int] = []
    link = DroneLink(
        world.make,
        world.reachable,
        gate,
        hover=lambda c: hovers.append(c.index),
        on_change=lambda _changed: details.append((link.state, link.detail)),
        backoff=BACKOFF,
        tick_s=0.01,
    )
    stop = threading.Event()
    owner = threading.Thread(target=link.run, args=(stop,), daemon=True)
    owner.start()
    yield world, link, details, hovers
    stop.set()
    owner.join(5)
    assert not owner.is_alive()


def connected(link: DroneLink, n: int) -> bool:
    return link.state == "connected" and link.connections == n


def test_a_failed_connect_gets_a_new_controller_and_the_back_off(rig):
    world, link, details, _ = rig
    assert wait_until(lambda: connected(link, 1))
    world.refuse_connects = 2  # a blip, then the first two handshakes fail
    world.drop(stays_up=True)
    assert wait_until(lambda: connected(link, 2))
    first, *failed, last = world.controllers
    assert len(failed) == 2 and all(c.error and c.destroyed for c in failed), "a failed controller is never reused"
    assert first.destroyed and last.connected and not last.error
    delays = [d for s, d in details if "connect failed" in d]
    assert delays == ["connect failed, retrying in 0.02 s", "connect failed, retrying in 0.04 s"]


def test_an_absent_drone_is_probed_with_a_growing_back_off_and_no_controller(rig):
    world, link, details, _ = rig
    assert wait_until(lambda: connected(link, 1))
    n = len(world.probes)
    world.drop()
    assert wait_until(lambda: len(world.probes) >= n + 7)
    assert len(world.controllers) == 1, "no controller is made (nor connected: 45 s in Olympe) while unreachable"
    retries = [d.rsplit("in ", 1)[1] for _, d in details if "not reachable" in d]
    assert retries == ["0.02 s", "0.04 s", "0.08 s", "0.16 s"]
    gaps = [b - a for a, b in zip(world.probes[n:], world.probes[n + 1 :], strict=False)][:6]
    assert all(g >= 0.9 * d for g, d in zip(gaps, [0.02, 0.04, 0.08, 0.16, 0.16, 0.16], strict=True)), gaps
    world.up = True
    t = time.monotonic()
    assert wait_until(lambda: connected(link, 2))
    assert time.monotonic() - t < BACKOFF[2] + 0.5, "back within the back-off's longest wait"
    world.drop()  # the back-off starts over after a connection
    assert wait_until(lambda: "not reachable" in details[-1][1])
    assert details[-1][1].endswith("retrying in 0.02 s")


def test_a_loss_disarms_and_nothing_is_sent_after_the_reconnect_before_a_new_arm(rig):
    world, link, details, _ = rig
    assert wait_until(lambda: connected(link, 1))
    assert link.arm() == (True, "armed")
    link.gate.update(1.0, 0.0, 0.0, 0.0, time.monotonic())
    assert link.pilot(time.monotonic(), 0.5) and world.controllers[0].command == (0, 20, 0, 0)
    world.drop()
    assert wait_until(lambda: link.state == "disconnected")
    assert not link.gate.armed and link.losses == 1 and link.controller is None
    lost = next(d for d in details if d[0] == "disconnected")
    assert lost == ("disconnected", "link lost: disarmed, reconnecting; a new arm is needed after it")
    ok, why = link.arm()
    assert not ok and why.startswith("not connected to a drone (disconnected")
    world.up = True
    assert wait_until(lambda: connected(link, 2))
    new = link.controller
    link.gate.update(1.0, 0.0, 0.0, 0.0, time.monotonic())
    assert not link.pilot(time.monotonic(), 0.5) and new.command == (0, 0, 0, 0), "disarmed until a new arm"
    assert link.arm() == (True, "armed")
    link.gate.update(1.0, 0.0, 0.0, 0.0, time.monotonic())
    assert link.pilot(time.monotonic(), 0.5) and new.command == (0, 20, 0, 0)
    assert world.controllers[0].destroyed and new is not world.controllers[0]


def test_disarm_never_waits_and_a_rearm_starts_after_the_stop(rig):
    world, link, _, hovers = rig
    world.stop_s = 0.4  # Olympe's stop_piloting blocking long
    assert wait_until(lambda: connected(link, 1))
    assert link.arm() == (True, "armed")
    ctrl = link.controller
    link.gate.update(1.0, 0.0, 0.0, 0.0, time.monotonic())
    link.pilot(time.monotonic(), 0.5)
    t = time.monotonic()
    assert link.disarm() is True
    took = time.monotonic() - t
    assert took < 0.2, f"disarm waited {took:.3f} s"
    assert ctrl.command == (0, 0, 0, 0), "the hover command is handed to Olympe at once"
    assert not link.pilot(time.monotonic(), 0.5)
    assert link.arm() == (True, "armed"), "re-armed right after: its start waits for the stop"
    assert [e for e in world.events if e[0] in ("start", "stop")] == [("start", 0), ("stop", 0), ("start", 0)]
    assert hovers == [0], "one explicit zero PCMD with the stop"


def test_an_arm_racing_with_a_disarm_does_not_win(rig):
    world, link, _, _ = rig
    assert wait_until(lambda: connected(link, 1))
    world.start_gate.clear()  # Olympe slow to start its piloting interface
    result: list = []
    arming = threading.Thread(target=lambda: result.append(link.arm()))
    arming.start()
    time.sleep(0.05)
    assert link.arm() == (False, "already arming")
    assert link.disarm() is False  # nothing to stop yet
    world.start_gate.set()
    arming.join(5)
    assert result == [(False, "not armed: disarmed or link lost while arming")] and not link.gate.armed
    assert wait_until(lambda: ("stop", 0) in world.events), "piloting that began after the disarm is stopped again"


def test_flight_commands_wait_one_of_each_kind_and_block_nothing_else(rig):
    world, link, _, _ = rig
    assert wait_until(lambda: connected(link, 1))
    assert link.arm() == (True, "armed")
    answers: dict[str, tuple] = {}

    def ask(key: str, name: str) -> None:
        answers[key] = link.flight(name, lambda c: c(f"{name}-ignored"), 0.6)

    pending = [threading.Thread(target=ask, args=(k, k)) for k in ("TakeOff", "Landing")]
    for th in pending:
        th.start()
    time.sleep(0.1)
    t = time.monotonic()
    again = link.flight("TakeOff", lambda c: c("TakeOff-ignored"), 0.6)
    disarmed = link.disarm()
    took = time.monotonic() - t
    assert again == (False, "TakeOff already sent, still waiting for the drone's acknowledgement")
    assert disarmed and took < 0.2, f"a repeated take-off and a disarm took {took:.3f} s while two commands wait"
    for th in pending:
        th.join(5)
    assert answers == {
        "TakeOff": (False, "TakeOff not acknowledged within 0.6 s"),
        "Landing": (False, "Landing not acknowledged within 0.6 s"),
    }
    assert link.flight("Landing", lambda c: c("Landing"), 0.6) == (True, "Landing acknowledged")
    assert world.controllers[0].sent == ["TakeOff-ignored", "Landing-ignored", "Landing"], "the repeat is not resent"
