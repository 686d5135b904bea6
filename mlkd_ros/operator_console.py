"""Operator console node: a web page on the ground station to watch, pick the target, and fly.

    ros2 run mlkd_ros operator_console --ros-args -p port:=8080   (started by the launch files)
    then open http://127.0.0.1:8080/

One process, two threads: rclpy's executor spins the ConsoleNode (mlkd_ros/console/ros_side.py) in a
background thread; the main thread runs the aiohttp server (mlkd_ros/console/web.py) on asyncio.
aiohttp because one maintained library gives the HTTP server, WebSockets with backpressure
(`await send_bytes` waits while a browser is slow, which is what newest-frame-only needs) and
middlewares, with no ASGI server or extra framework beside it (docs/console.md).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path

import rclpy
from aiohttp import web
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from mlkd_ros.console.ros_side import ConsoleNode
from mlkd_ros.console.security import Guard, TokenError, is_loopback, resolve_token
from mlkd_ros.console.web import Console, Hub
from mlkd_ros.node_help import print_help, wants_help

log = logging.getLogger("mlkd.console")
BIND_RETRY_S = 5.0


async def serve(node: ConsoleNode, token: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    hub = Hub(loop)
    origins = {o.strip() for o in node.allowed_origins.split(",") if o.strip()}
    console = Console(node, hub, Guard(token, is_loopback(node.bind_address), origins))
    node.sink = hub
    runner = web.AppRunner(console.app, access_log=None, handle_signals=False)
    await runner.setup()
    while not stop.is_set():
        site = web.TCPSite(runner, node.bind_address, node.port)
        try:
            await site.start()
            break
        except OSError as exc:  # port taken: stay up (the launch file's other nodes keep running) and retry
            await site.stop()  # unregisters it from the runner, so a new site can try again
            node.server_error = f"cannot listen on {node.bind_address}:{node.port}: {exc.strerror or exc}"
            log.error("%s; retrying in %.0f s", node.server_error, BIND_RETRY_S)
            try:
                await asyncio.wait_for(stop.wait(), BIND_RETRY_S)
            except TimeoutError:
                pass
    if not stop.is_set():
        node.server_error = ""
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        suffix = f"?token={token}" if token else ""
        log.info("operator console listening on http://%s:%d/%s", shown, port, suffix)
        await stop.wait()
    node.sink = None
    await runner.cleanup()


def main(args: list[str] | None = None) -> int:
    if wants_help(args):  # the parameters are declared by the ROS side of the console
        ros_side = Path(__file__).resolve().parent / "console" / "ros_side.py"
        return print_help(ros_side, "operator_console", __doc__.splitlines()[0])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)  # asyncio handles Ctrl-C
    node = ConsoleNode()
    try:
        token, source = resolve_token(node.bind_address, node.token, node.token_file)
    except TokenError as exc:
        log.error("%s: refusing to serve without a usable token", exc)
        node.destroy_node()
        rclpy.try_shutdown()
        return 2
    log.info("access token: %s", source)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="console-ros", daemon=True)
    spinner.start()
    try:
        asyncio.run(serve(node, token))
    finally:
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
