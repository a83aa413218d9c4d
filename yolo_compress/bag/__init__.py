"""rosbag2 camera recordings through the `rosbags` library (no ROS install): making bags with ground truth,
reading them, and evaluating tiers on them offline, in a real-time replay and (with rclpy) live through the node.

Torch-free, like the runtime: the evaluation can run on the robot itself.
"""
