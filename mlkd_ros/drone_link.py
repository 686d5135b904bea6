"""The Olympe bridge's drone link: connect, supervise, reconnect, arm, disarm and flight acknowledgements.

Pure Python (no ROS; the Olympe controller comes from a factory) so it is unit-tested with a stand-in
controller (tests/olympe/test_drone_link.py); mlkd_ros/olympe_bridge.py wires it to ROS.
- One owner thread (`run`) creates, connects, watches and destroys the controllers: Olympe stops a
  controller's piloting timer once the thread that connected it exits.
- Reconnection: the drone's connection port is probed first (Olympe's connect() to an absent drone blocks
  for its 45 s minimum timeout), and every connect gets a fresh controller: one whose connect failed or whose
  link was lost is destroyed, never reused (a drone reappearing 22-26 s into Olympe's connect leaves that
  controller in an 'Error' state that refuses every later connect). Back-off between attempts 1, 2, 4, 8,
  10 s..., reset by a connection.
- Arming: nothing is sent before `arm()`; a disarm or a link loss bumps the arm epoch, so an arm racing
  with either does not win; after a reconnect nothing is sent until a new arm.
- Olympe's piloting interface is started and stopped by the owner thread, in request order. `disarm()`
  never waits for it: it zeroes the command Olympe resends every 25 ms and queues the stop, so an
  emergency hover answers at once whatever else is pending.
- Take-off and landing wait for the drone's acknowledgement, one of each kind at a time: a repeated
  request while one waits is answered at once, so waiting services can never hold every executor thread.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

from mlkd_ros.piloting import PilotingGate
from mlkd_ros.video import backoff_delays

log = logging.getLogger("mlkd.drone_link")

ARSDK_PORT = 44444  # where a drone, a SkyController or Sphinx takes Olympe's connection handshake
BACKOFF = (1.0, 2.0, 10.0)  # first delay, factor, cap (s)


def tcp_reachable(host: str, port: int = ARSDK_PORT, timeout: float = 1.0) -> bool:
    """Does anything accept a TCP connection there? (a quick look before Olympe's long connect)"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ignore(*_a: Any) -> None:
    return None


class DroneLink:
    """The connected controller (`controller`, None while down) and the piloting state around it.

    make(): a new, unconnected controller (olympe.Drone-like: connect(retry=), connected, disconnect(),
    destroy(), start_piloting(), stop_piloting(), piloting(roll, pitch, yaw, gaz, time), __call__(message)).
    reachable(): whether a connect is worth trying now. hover(ctrl): send one zero PCMD at once.
    on_change(state_changed): state or detail changed; on_connect(ctrl) / on_tick(ctrl): owner thread, after
    each connection / every `tick_s` while connected.
    """

    def __init__(
        self,
        make: Callable[[], Any],
        reachable: Callable[[], bool],
        gate: PilotingGate,
        *,
        hover: Callable[[Any], object] = _ignore,
        on_change: Callable[[bool], None] = _ignore,
        on_connect: Callable[[Any], None] = _ignore,
        on_tick: Callable[[Any], None] = _ignore,
        backoff: tuple[float, float, float] = BACKOFF,
        tick_s: float = 0.05,
        job_timeout: float = 5.0,
    ) -> None:
        self._make, self._reachable, self.gate = make, reachable, gate
        self._hover, self._on_change, self._on_connect, self._on_tick = hover, on_change, on_connect, on_tick
        self._backoff, self._tick_s, self._job_timeout = backoff, tick_s, job_timeout
        self.state, self.detail = "connecting", ""
        self.connections = self.losses = self.sent = 0
        self.lock = threading.RLock()  # gate, controller and piloting state: service threads vs the owner thread
        self._ctrl: Any = None
        self._piloting = False  # Olympe's piloting interface started for us (armed)
        self._epoch = 0  # bumped by every disarm and loss
        self._arming = False
        self._waiting: set[str] = set()  # flight commands waiting for their acknowledgement
        self._jobs: queue.Queue[tuple[Any, Callable[[], Any], Future]] = queue.Queue()

    @property
    def controller(self) -> Any:
        return self._ctrl

    # ---- owner thread
    def run(self, stop: threading.Event) -> None:
        """Connect, supervise, reconnect until `stop`; then hover, disconnect and destroy."""
        delays = backoff_delays(*self._backoff)
        try:
            while not stop.is_set():
                ctrl, why = self._connect()
                if ctrl is None:
                    delay = next(delays)
                    self._report(
                        "disconnected" if self.connections else "connecting", f"{why}, retrying in {delay:g} s"
                    )
                    stop.wait(delay)
                    continue
                delays = backoff_delays(*self._backoff)
                self._supervise(ctrl, stop)
        finally:
            self._close()

    def _connect(self) -> tuple[Any, str]:
        if not self._reachable():
            return None, "drone not reachable"
        t, ctrl = time.monotonic(), None
        try:
            ctrl = self._make()
            ok = bool(ctrl.connect(retry=1))
        except Exception as exc:  # never end the owner thread
            log.error("connect raised %s: %s", type(exc).__name__, exc)
            ok = False
        log.info("connect %s after %.1f s", "succeeded" if ok else "failed", time.monotonic() - t)
        if not ok:
            if ctrl is not None:
                self._discard(ctrl)
            return None, "connect failed"
        return ctrl, ""

    def _supervise(self, ctrl: Any, stop: threading.Event) -> None:
        with self.lock:
            self._ctrl = ctrl
            self.connections += 1
        self._report("connected", f"connection {self.connections}")
        self._guarded(self._on_connect, ctrl)
        while not stop.is_set() and ctrl.connected:
            self._guarded(self._on_tick, ctrl)
            self._run_jobs(ctrl, self._tick_s)
        if not stop.is_set():
            self._lost(ctrl)

    @staticmethod
    def _guarded(fn: Callable[[Any], None], ctrl: Any) -> None:
        try:
            fn(ctrl)
        except Exception:  # a telemetry or settings error must never end the owner thread
            log.exception("drone link callback failed")

    def _run_jobs(self, ctrl: Any, wait: float = 0.0) -> None:
        """Olympe piloting start/stop requests, in order; waits up to `wait` for the first."""
        timeout: float | None = wait
        while True:
            try:
                target, fn, fut = self._jobs.get(timeout=timeout) if timeout else self._jobs.get_nowait()
            except queue.Empty:
                return
            timeout = None
            if target is not ctrl:
                fut.set_result(False)  # queued for a controller that is gone
                continue
            try:
                fut.set_result(fn())
            except Exception as exc:
                log.error("%s failed: %s: %s", getattr(fn, "__name__", "piloting job"), type(exc).__name__, exc)
                fut.set_result(False)

    def _post(self, ctrl: Any, fn: Callable[[], Any]) -> Future:
        fut: Future = Future()
        self._jobs.put((ctrl, fn, fut))
        return fut

    def _lost(self, ctrl: Any) -> None:
        with self.lock:
            self._ctrl = None
            self.gate.arm(False)
            self._piloting = False  # Olympe stopped its piloting timer with the device
            self._epoch += 1
            self.losses += 1
        self._run_jobs(None)  # fail what was queued for it
        self._report("disconnected", "link lost: disarmed, reconnecting; a new arm is needed after it")
        self._discard(ctrl)  # after the report: Olympe's destroy can take seconds

    def _discard(self, ctrl: Any) -> None:
        t = time.monotonic()
        try:
            if ctrl.connected:
                ctrl.disconnect()
        except Exception as exc:
            log.error("disconnect raised %s: %s", type(exc).__name__, exc)
        try:
            ctrl.destroy()
        except Exception as exc:
            log.error("destroy raised %s: %s", type(exc).__name__, exc)
        log.info("controller destroyed after %.1f s", time.monotonic() - t)

    def _close(self) -> None:
        with self.lock:
            ctrl, was = self._ctrl, self._piloting
            self._ctrl, self._piloting = None, False
            self.gate.arm(False)
            self._epoch += 1
        if ctrl is not None:
            if was:
                self._stop_piloting(ctrl)
            self._discard(ctrl)
        self._run_jobs(None)  # fail whatever was still queued

    def _stop_piloting(self, ctrl: Any) -> bool:
        if not ctrl.connected:
            return False
        self._hover(ctrl)  # one zero PCMD now, whatever Olympe's tick does
        ctrl.stop_piloting()
        return True

    def _report(self, state: str, detail: str) -> None:
        changed = state != self.state
        if changed or detail != self.detail:
            self.state, self.detail = state, detail
            self._on_change(changed)

    # ---- any thread
    def arm(self) -> tuple[bool, str]:
        """Start sending the gate's commands; waits for Olympe's piloting interface (on the owner thread)."""
        with self.lock:
            ctrl, epoch = self._ctrl, self._epoch
            if ctrl is None:
                return False, f"not connected to a drone ({self.state}: {self.detail})"
            if self._arming:
                return False, "already arming"
            self._arming = True
        try:
            fut = self._post(ctrl, lambda: self._epoch == epoch and ctrl.start_piloting())
            try:
                started = bool(fut.result(self._job_timeout))
            except TimeoutError:
                started = False
            with self.lock:
                if started and epoch == self._epoch and self._ctrl is ctrl:
                    self._piloting = True
                    self.gate.arm(True)
                    return True, "armed"
                self._epoch += 1  # a start still queued must not run later
        finally:
            with self.lock:
                self._arming = False
        if started:  # piloting began, then a disarm or a loss: stop it again
            self._post(ctrl, partial(self._stop_piloting, ctrl))
            return False, "not armed: disarmed or link lost while arming"
        return False, "Olympe's piloting interface did not start"

    def disarm(self) -> bool:
        """Hover and stop piloting, never waiting: returns whether piloting was on."""
        with self.lock:
            self.gate.arm(False)
            self._epoch += 1
            ctrl, was = self._ctrl, self._piloting
            self._piloting = False
            if ctrl is None or not was:
                return False
            if ctrl.connected:
                ctrl.piloting(0, 0, 0, 0, 0.0)  # Olympe's own 25 ms tick sends this hover at once
        self._post(ctrl, partial(self._stop_piloting, ctrl))
        return True

    def pilot(self, now: float, piloting_time: float) -> bool:
        """Hand the gate's command to Olympe (which resends it every 25 ms) when armed and connected."""
        with self.lock:
            cmd = self.gate.command(now)
            ctrl = self._ctrl
            if cmd is None or ctrl is None or not self._piloting or not ctrl.connected:
                return False
            # piloting_time: Olympe itself returns to hover if we stop refreshing (a second watchdog).
            if ctrl.piloting(cmd.roll, cmd.pitch, cmd.yaw, cmd.gaz, piloting_time):
                self.sent += 1
                return True
        return False

    def flight(self, name: str, send: Callable[[Any], Any], timeout: float) -> tuple[bool, str]:
        """send(ctrl) -> an Olympe expectation; waits up to `timeout` for it (one `name` at a time)."""
        with self.lock:
            ctrl = self._ctrl
            if ctrl is None:
                return False, f"not connected to a drone ({self.state})"
            if name in self._waiting:
                return False, f"{name} already sent, still waiting for the drone's acknowledgement"
            self._waiting.add(name)
        try:
            ok = bool(send(ctrl).wait(timeout).success())
        finally:
            with self.lock:
                self._waiting.discard(name)
        return ok, f"{name} acknowledged" if ok else f"{name} not acknowledged within {timeout:g} s"
