"""Stopping a node: the shutdown race of rclpy's signal handler ends the spin quietly, a real error does not."""

from __future__ import annotations

import pytest

from _ros import domain_id, require_ros


@pytest.fixture
def running():
    """A context with one node in a single-threaded executor, as the detector node runs."""
    require_ros()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id())
    node = rclpy.create_node("shutdown_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    yield context, executor
    executor.shutdown()
    node.destroy_node()
    context.try_shutdown()


def test_a_spin_that_meets_the_shutdown_ends_quietly(running):
    from yolo_compress.ros.shutdown import until_shutdown

    context, executor = running
    context.try_shutdown()  # what rclpy's signal handler does, from its own thread, mid-spin
    with pytest.raises(RuntimeError, match="context is not valid"):
        executor.spin_once(timeout_sec=0.1)  # the race as rclpy reports it: RCLError, not a shutdown exception
    with until_shutdown(context):
        executor.spin_once(timeout_sec=0.1)


def test_an_error_while_the_context_is_up_propagates(running):
    from yolo_compress.ros.shutdown import until_shutdown

    context, _ = running
    with pytest.raises(RuntimeError, match="a real failure"), until_shutdown(context):
        raise RuntimeError("a real failure")
