"""The QoS each topic of a camera bag is recorded with, which `ros2 bag play` offers again on playback.

Images and ground truth get the ROS 2 default profile (reliable, volatile, keep last 10): what image_transport
camera drivers offer by default, and the most compatible offer, since both reliable subscribers (RViz) and
best-effort ones (the node's sensor-data QoS) match it. The class map is latched (transient local, depth 1)
like the node's `~/label_info`, so a subscriber that starts after playback began still gets it. Durations of
0 s mean "unspecified" (infinite), as rosbag2 itself writes for default profiles.
"""

from __future__ import annotations

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

_UNSPECIFIED = QosTime(0, 0)


def _profile(depth: int, durability: QosDurability) -> Qos:
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE,
        durability=durability,
        deadline=_UNSPECIFIED,
        lifespan=_UNSPECIFIED,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_UNSPECIFIED,
        avoid_ros_namespace_conventions=False,
    )


STREAM = _profile(10, QosDurability.VOLATILE)
LATCHED = _profile(1, QosDurability.TRANSIENT_LOCAL)
