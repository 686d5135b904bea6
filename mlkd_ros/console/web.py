"""The console's aiohttp server: static page, one WebSocket per browser, commands to the ROS node.

Each browser has one slot for the newest frame and one for the newest state. A frame goes out only
while fewer than IN_FLIGHT frames are unacknowledged (the page acks each frame once it has decoded
it): a frame that arrives meanwhile replaces the waiting one (counted as dropped). So a slow browser
or network never builds a queue, neither here nor in the socket buffers, and what it shows is recent.
Command replies are queued (a few, small) and sent first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from importlib import resources

from aiohttp import WSMsgType, web

from mlkd_ros.console.protocol import ACK, MAX_MESSAGE_BYTES, Command, ProtocolError, parse
from mlkd_ros.console.ros_side import ConsoleNode
from mlkd_ros.console.security import Guard

log = logging.getLogger("mlkd.console")

STATIC = resources.files("mlkd_ros.console") / "static"
PAGES = {"/": ("index.html", "text/html"), "/console.js": ("console.js", "text/javascript")}
PAGES["/console.css"] = ("console.css", "text/css")
INIT_CONFIRM_S = 3.0
IN_FLIGHT = 2  # frames sent but not yet acknowledged by the browser


class Client:
    def __init__(self, cid: int, ws: web.WebSocketResponse, peer: str, hub: Hub) -> None:
        self.id, self.ws, self.peer, self.hub = cid, ws, peer, hub
        self.frame: bytes | None = None
        self.state: str | None = None
        self.replies: deque[str] = deque(maxlen=32)
        self.wake = asyncio.Event()
        self.sent = self.dropped = self.in_flight = 0

    @property
    def name(self) -> str:
        return f"client #{self.id} ({self.peer})"

    def offer_frame(self, payload: bytes) -> None:
        if self.frame is not None:
            self.dropped += 1
        self.frame = payload
        self.wake.set()

    def offer_state(self, text: str) -> None:
        self.state = text
        self.wake.set()

    def ack(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.wake.set()

    def reply(self, **msg) -> None:
        self.replies.append(json.dumps(msg))
        self.wake.set()

    async def run(self) -> None:
        try:
            await self._send_loop()
        except (ConnectionError, RuntimeError) as exc:  # the browser went away mid-send
            log.info("%s: send stopped: %s", self.name, exc)

    async def _send_loop(self) -> None:
        while not self.ws.closed:
            await self.wake.wait()
            self.wake.clear()
            while self.replies:
                await self.ws.send_str(self.replies.popleft())
            if self.state is not None:
                text, self.state = self.state, None
                await self.ws.send_str(text)
                link = {"type": "link", "sent": self.sent, "dropped": self.dropped, "browsers": self.hub.viewers()}
                await self.ws.send_str(json.dumps(link))
            if self.frame is not None and self.in_flight < IN_FLIGHT:
                payload, self.frame = self.frame, None
                self.in_flight += 1
                await self.ws.send_bytes(payload)
                self.sent += 1


class Hub:
    """Thread-safe entry points for the ROS node (viewers/frame/state), fan-out to the clients."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: dict[int, Client] = {}

    def viewers(self) -> int:
        return len(self.clients)

    def frame(self, payload: bytes) -> None:
        self._post("offer_frame", payload)

    def state(self, text: str) -> None:
        self._post("offer_state", text)

    def _post(self, method: str, data) -> None:
        try:
            self.loop.call_soon_threadsafe(self._fan, method, data)
        except RuntimeError:  # the loop closed under us (shutting down): nobody to show it to
            pass

    def _fan(self, method: str, data) -> None:
        for c in list(self.clients.values()):
            getattr(c, method)(data)


class Console:
    def __init__(self, node: ConsoleNode, hub: Hub, guard: Guard) -> None:
        self.node, self.hub, self.guard = node, hub, guard
        self._ids = itertools.count(1)
        self._logged: set[str] = set()
        self._tasks: set[asyncio.Task] = set()  # running commands (asyncio keeps only weak references)
        self.app = web.Application(middlewares=[guard.middleware])
        for path in PAGES:
            self.app.router.add_get(path, self.page)
        self.app.router.add_get("/ws", self.websocket)

    async def page(self, request: web.Request) -> web.Response:
        name, ctype = PAGES[request.path]
        body = (STATIC / name).read_bytes()
        return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "no-store"})

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self.hub.clients) >= self.node.max_clients:
            return web.Response(status=503, text=f"{self.node.max_clients} browsers already connected\n")
        # aiohttp closes the connection (1009) above max_msg_size; below it our own limit gives an error reply.
        ws = web.WebSocketResponse(max_msg_size=1 << 20, heartbeat=10.0)
        await ws.prepare(request)
        peer = f"{request.remote}, {request.headers.get('User-Agent', '?')[:60]}"
        client = Client(next(self._ids), ws, peer, self.hub)
        self.hub.clients[client.id] = client
        log.info("%s connected; %d browser(s)", client.name, len(self.hub.clients))
        sender = asyncio.create_task(client.run())
        client.reply(type="hello", client=client.id, max_message_bytes=MAX_MESSAGE_BYTES)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.handle(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.refuse(client, "binary messages are not accepted; send JSON text")
        finally:
            del self.hub.clients[client.id]
            sender.cancel()
            log.info("%s left; %d browser(s)", client.name, len(self.hub.clients))
        return ws

    def refuse(self, client: Client, why: str, cid=None) -> None:
        client.reply(type="error", id=cid, message=why)
        if why not in self._logged:  # one line per distinct problem, not one per message
            self._logged.add(why)
            log.warning("%s: bad message: %s", client.name, why)

    def handle(self, client: Client, text: str) -> None:
        try:
            cmd = parse(text)
        except ProtocolError as exc:
            self.refuse(client, str(exc))
            return
        if cmd.kind == ACK:
            client.ack()
            return
        log.info("%s -> %s", client.name, cmd.describe())
        # Not awaited here: a slow call (take-off waits up to 5 s) must not hold back an emergency hover.
        task = asyncio.get_running_loop().create_task(self.run_command(client, cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run_command(self, client: Client, cmd: Command) -> None:
        try:
            ok, message = await (self._init(cmd) if cmd.kind == "init" else self._service(cmd))
        except Exception as exc:  # a failed call must not take the connection (or the node) down
            ok, message = False, f"{type(exc).__name__}: {exc}"
        if cmd.kind == "follow" and ok:
            self.node.follow_enabled = cmd.enable
        log.info("%s <- %s: %s %s", client.name, cmd.kind, "ok" if ok else "FAILED", message)
        client.reply(type="result", id=cmd.id, command=cmd.kind, ok=ok, message=message)

    async def _init(self, cmd: Command) -> tuple[bool, str]:
        fut = asyncio.wrap_future(self.node.send_init(cmd))
        try:
            box = await asyncio.wait_for(fut, INIT_CONFIRM_S)
        except TimeoutError:
            return False, f"init sent, but no box from the tracker for that frame within {INIT_CONFIRM_S:.0f} s"
        if not box.polygon.points:
            return False, "the tracker answered that frame with 'lost'"
        return True, "tracker initialised on the frame on screen"

    async def _service(self, cmd: Command) -> tuple[bool, str]:
        name = self.node.commands[cmd.kind][1]
        fut = self.node.call(cmd)
        if fut is None:
            return False, f"service {name} is not available"
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        fut.add_done_callback(lambda f: loop.call_soon_threadsafe(lambda: done.done() or done.set_result(f)))
        try:
            res = (await asyncio.wait_for(done, self.node.service_timeout)).result()
        except TimeoutError:
            self.node.cancel(cmd, fut)
            return False, f"{name}: no answer within {self.node.service_timeout:.0f} s (timeout)"
        return bool(res.success), res.message or ("done" if res.success else "refused")
