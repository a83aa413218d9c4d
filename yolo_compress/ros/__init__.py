"""The ROS 2 side: the `yolo_detector` node, the image publisher, and their message conversions.

auto_tier imports no rclpy: the tier controller's rules are tested without a middleware.
"""
