"""Operator console node (real processes over DDS): access token, Origin and Host checks, bad browser
messages, several browsers, newest-frame-only flow control, commands reaching ROS services."""

from __future__ import annotations

import asyncio
import json
import re
import struct
import time

import aiohttp
import cv2
import numpy as np
import pytest
from console_helpers import HOVER_MESSAGE, FramePublisher, console_address

from mlkd_ros.console.protocol import MAX_MESSAGE_BYTES, ProtocolError, parse
from mlkd_ros.console.security import TokenError, is_loopback, resolve_token


def test_token_rules(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.42.10") and not is_loopback("groundstation")
    assert resolve_token("127.0.0.1", "", "") == (None, "none (loopback bind)")
    token, source = resolve_token("0.0.0.0", "", "")
    assert source == "generated" and len(token) >= 32
    assert resolve_token("0.0.0.0", "", "")[0] != token
    f = tmp_path / "token"
    f.write_text("s3cret\n")
    assert resolve_token("0.0.0.0", "", str(f)) == ("s3cret", f"file {f}")
    assert resolve_token("127.0.0.1", "p", str(f))[0] == "p"  # a token given is required on loopback too
    f.write_text("  \n")
    with pytest.raises(TokenError, match="empty"):
        resolve_token("0.0.0.0", "", str(f))
    with pytest.raises(TokenError, match="cannot read"):
        resolve_token("0.0.0.0", "", str(tmp_path / "missing"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nope{", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "fly"}', "unknown message type"),
        ('{"type": "takeoff"}', "confirm"),
        ('{"type": "arm", "enable": "yes"}', "enable"),
        ('{"type": "init", "box": [1, 2, "a", 4], "stamp": [1, 2]}', "4 numbers"),
        ('{"type": "init", "box": [1, 2, 0, 4], "stamp": [1, 2]}', "w, h >= 1"),
        ('{"type": "init", "box": [1, 2, 3, 4], "stamp": [1, -2]}', "nanosec"),
        ('{"type": "init", "box": [1, 2, 3, 4]}', "stamp"),
        ('{"type": "hover", "id": true}', "id must be"),
        ('{"type": "hover", "pad": "' + "x" * MAX_MESSAGE_BYTES + '"}', "too large"),
    ],
)
def test_protocol_rejects_bad_messages(text, why):
    with pytest.raises(ProtocolError, match=re.escape(why)):
        parse(text)


def test_protocol_accepts_commands():
    init = parse('{"type": "init", "id": 3, "box": [10, 20.5, 30, 40], "stamp": [5, 6], "frame_id": "camera"}')
    assert (init.kind, init.id, init.box, init.stamp, init.frame_id) == (
        "init",
        3,
        (10, 20.5, 30, 40),
        (5, 6),
        "camera",
    )
    assert parse('{"type": "follow", "enable": false}').enable is False
    assert parse('{"type": "takeoff", "confirm": true}').kind == "takeoff"


def split_frame(data: bytes) -> tuple[dict, np.ndarray]:
    (n,) = struct.unpack(">I", data[:4])
    return json.loads(data[4 : 4 + n]), cv2.imdecode(np.frombuffer(data[4 + n :], np.uint8), cv2.IMREAD_COLOR)


async def next_of(ws, kind: str, timeout: float = 10.0):
    """The next message of `kind` ('frame' = binary, else a JSON type), skipping the others."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        msg = await ws.receive(timeout=left)
        if msg.type == aiohttp.WSMsgType.BINARY and kind == "frame":
            return split_frame(msg.data)
        if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == kind:
            return json.loads(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            raise AssertionError(f"websocket closed: {msg}")
    raise AssertionError(f"no {kind} message within {timeout} s")


async def refused(session, url: str, **kw) -> int:
    try:
        async with session.ws_connect(url, **kw):
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


async def security_checks(base: str, token: str, pub: FramePublisher) -> dict:
    own = {"Origin": base}
    evil = {"Origin": "http://evil.example"}
    out: dict = {}
    async with aiohttp.ClientSession() as s:
        # No token, a wrong one, or a foreign Origin: the page, its files and the WebSocket are all refused.
        for path in ("/", "/console.js", "/console.css", "/?token=wrong"):
            async with s.get(base + path, allow_redirects=False) as r:
                out[f"GET {path}"] = r.status
        async with s.post(base + "/ws", data='{"type": "hover"}') as r:
            out["POST /ws"] = r.status
        out["ws no token"] = await refused(s, base + "/ws", headers=own)
        out["ws wrong token"] = await refused(s, base + "/ws?token=wrong", headers=own)
        out["ws evil origin"] = await refused(s, f"{base}/ws?token={token}", headers=evil)
        async with s.get(f"{base}/?token={token}", headers=evil, allow_redirects=False) as r:
            out["GET evil origin"] = r.status
        await asyncio.sleep(1.0)  # had anything slipped through, the service / topic would see it by now
        out["hover calls before token"], out["inits before token"] = pub.hover_calls, len(pub.inits)

    # The token in the URL once: a cookie, then a clean URL (unsafe=True: aiohttp's jar skips IP hosts otherwise).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(f"{base}/?token={token}", allow_redirects=False) as r:
            out["token url"] = (r.status, r.headers.get("Location"), "HttpOnly" in r.headers.get("Set-Cookie", ""))
        async with s.get(base + "/console.js") as r:
            out["cookie js"] = r.status
        async with s.ws_connect(base + "/ws", headers=own) as a:
            hello = await next_of(a, "hello")
            meta, img = await next_of(a, "frame")
            out["frame"] = (meta, None if img is None else img.shape)
            for bad in ("nope{", "nope{", '{"type": "fly"}', "x" * (MAX_MESSAGE_BYTES + 10)):
                await a.send_str(bad)
                out.setdefault("errors", []).append((await next_of(a, "error"))["message"])
            await a.send_bytes(b"\x00\x01")
            out["errors"].append((await next_of(a, "error"))["message"])

            # A second browser, token as a Bearer header; it never acks, so it gets IN_FLIGHT frames only.
            async with aiohttp.ClientSession() as s2:
                b = await s2.ws_connect(base + "/ws", headers={**own, "Authorization": f"Bearer {token}"})
                out["second hello"] = (await next_of(b, "hello"))["client"] != hello["client"]
                await a.send_str('{"type": "hover", "id": 5}')
                out["hover"] = await next_of(a, "result")
                await a.send_str('{"type": "land", "id": 6}')
                out["land"] = await next_of(a, "result")
                await asyncio.sleep(2.0)  # b reads nothing, acks nothing, while ~60 frames are published
                stale, end = [], time.monotonic() + 1.0
                while (left := end - time.monotonic()) > 0:
                    try:
                        msg = await b.receive(timeout=left)
                    except TimeoutError:
                        break
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        stale.append(split_frame(msg.data)[0])
                out["unacked frames"] = len(stale)
                await b.send_str('{"type": "ack"}')
                fresh, _ = await next_of(b, "frame")
                now = time.time()
                out["fresh age"] = now - (fresh["sec"] + fresh["nanosec"] / 1e9)
                out["stale age"] = now - (stale[-1]["sec"] + stale[-1]["nanosec"] / 1e9) if stale else None
                await b.close()
    return out


def test_console_security_on_non_loopback_bind(launcher, env, domain_id, sequence):
    frames, _ = sequence
    launcher.start("ground_station.launch.xml", ["operator_console"], console_port="0", console_bind="0.0.0.0")
    pub = FramePublisher(domain_id, frames)
    try:
        url = console_address(lambda: launcher.log("operator_console"))
        m = re.match(r"http://0\.0\.0\.0:(\d+)/\?token=(\S+)$", url)
        assert m, f"a 0.0.0.0 bind must generate a token and log it: {url}"
        base, token = f"http://127.0.0.1:{m.group(1)}", m.group(2)
        out = asyncio.run(security_checks(base, token, pub))
    finally:
        pub.close()
    log = launcher.log("operator_console")
    for what in ("GET /", "GET /console.js", "GET /console.css", "GET /?token=wrong", "POST /ws"):
        assert out[what] == 401, (what, out[what])
    assert out["ws no token"] == 401 and out["ws wrong token"] == 401
    assert out["ws evil origin"] == 403 and out["GET evil origin"] == 403
    assert out["hover calls before token"] == 0 and out["inits before token"] == 0, "a refused command reached ROS"
    assert out["token url"] == (302, "/", True) and out["cookie js"] == 200
    meta, shape = out["frame"]
    assert (meta["width"], meta["height"]) == (frames[0].shape[1], frames[0].shape[0]) and shape == frames[0].shape
    assert (meta["sec"], meta["nanosec"]) in pub.sent and meta["box"] is None
    assert [e.split(":")[0] for e in out["errors"]] == [
        "not JSON",
        "not JSON",
        "unknown message type 'fly'; expected one of init, reset, follow, arm, takeoff, land, hover",
        f"message too large ({MAX_MESSAGE_BYTES + 10} bytes > {MAX_MESSAGE_BYTES})",
        "binary messages are not accepted; send JSON text",
    ]
    assert log.count("bad message: not JSON") == 1, "the same bad message is logged once"
    assert out["second hello"]
    assert out["hover"]["ok"] and out["hover"]["message"] == HOVER_MESSAGE and pub.hover_calls == 1
    assert not out["land"]["ok"] and "olympe_bridge/land is not available" in out["land"]["message"]
    assert re.search(r"client #1 \(127\.0\.0\.1.*-> hover", log), "each command names the client that sent it"
    # Newest frame only: a browser that stops acking holds at most 2 frames, and the one after its ack is
    # recent (not the next of ~60 queued frames).
    assert 1 <= out["unacked frames"] <= 2, out["unacked frames"]
    assert out["fresh age"] < out["stale age"] - 1.0, (out["fresh age"], out["stale age"])
    assert launcher.alive("operator_console"), log[-2000:]


def test_console_loopback_needs_no_token_but_checks_host(launcher, env, probe):
    launcher.start("replay.launch.xml", ["operator_console"], console_port="0")
    url = console_address(lambda: launcher.log("operator_console"))
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
    # Nobody watching: no video / CLE subscriptions (a bag player waits for the tracker's and the logger's).
    assert probe.spin_until(lambda: probe.node.count_publishers("tracker/init") > 0, 20)
    assert probe.node.count_subscribers("camera/image") == 0 and probe.node.count_subscribers("tracker/cle") == 0
    assert probe.node.count_subscribers("tracker/offset") == 0

    async def watch() -> tuple[int, int, dict, bool]:
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                page = r.status
            async with s.get(url, headers={"Host": "evil.example"}) as r:  # DNS rebinding to 127.0.0.1
                rebound = r.status
            origin = f"http://{url.split('/')[2]}"
            async with s.ws_connect(url + "ws", headers={"Origin": origin}) as ws:
                state = await next_of(ws, "state")
                watching = await asyncio.to_thread(
                    probe.spin_until, lambda: probe.node.count_subscribers("camera/image") == 1, 10
                )
            return page, rebound, state["services"], watching

    page, rebound, services, watching = asyncio.run(watch())
    assert watching, "a connected browser subscribes the console to camera/image"
    assert page == 200 and rebound == 403
    assert services == dict.fromkeys(("reset", "follow", "arm", "takeoff", "land", "hover"), False)


def test_console_survives_a_taken_port(launcher, env, probe):
    """Port in use: the node stays up (the launch file's other nodes would be stopped if it exited), says
    so on /diagnostics, and serves as soon as the port is free."""
    import socket

    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    from mlkd_ros.dds import CONTROL_QOS

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    diags = probe.record(DiagnosticArray, "/diagnostics", CONTROL_QOS)
    launcher.start("ground_station.launch.xml", ["operator_console"], console_port=str(port))
    try:
        assert probe.spin_until(lambda: any(m.status[0].level == DiagnosticStatus.ERROR for _, m in diags), 30)
        error = next(m.status[0] for _, m in diags if m.status[0].level == DiagnosticStatus.ERROR)
        assert f"cannot listen on 127.0.0.1:{port}" in error.message and error.name.startswith("mlkd_operator_console")
        assert launcher.alive("operator_console")
    finally:
        squatter.close()
    assert console_address(lambda: launcher.log("operator_console"), 15) == f"http://127.0.0.1:{port}/"
