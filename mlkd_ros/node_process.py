"""The life of a node process: spin until Ctrl-C, SIGTERM or an external shutdown, then clean up once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node

N = TypeVar("N", bound=Node)


def spin_node(node: N, cleanup: Callable[[N], None] | None = None, executor: Executor | None = None) -> int:
    """Spin `node` (on `executor` when given, else rclpy's default one); on the way out `cleanup(node)`
    runs while the context is still up (a last message can still go out), then the node and the context
    go. rclpy.init is the caller's: the nodes init with different options. Returns 0 (the exit code)."""
    try:
        if executor is None:
            rclpy.spin(node)
        else:
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if cleanup is not None:
            cleanup(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
