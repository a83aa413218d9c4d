"""Ending a node's spin quietly on SIGINT / SIGTERM, whichever way rclpy reports it.

rclpy's signal handler shuts the context down from another thread. A spin blocked in its wait set ends
with ExternalShutdownException (or KeyboardInterrupt), but a spin that is just building its next wait set
gets RCLError ("the given context is not valid", ros2/rclpy#398; ros2cli catches it the same way). That
race made a node stopped by SIGTERM exit with a traceback and code 1 now and then (seen in CI). A
RuntimeError once the context is shut down is that same shutdown; while it is still up, it is a real
error and propagates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException


@contextmanager
def until_shutdown(context: Context | None = None) -> Iterator[None]:
    """`with until_shutdown(): executor.spin()` returns normally when the process is told to stop."""
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # rclpy's RCLError
        if rclpy.ok(context=context):
            raise
