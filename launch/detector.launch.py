"""Launch the yolo_detector node (and optionally RViz on its annotated image).

    ros2 launch yolo_compress detector.launch.py tier:=medium image_topic:=/camera/image_raw
    ros2 launch yolo_compress detector.launch.py tier:=auto params_file:=my.yaml rviz:=true

Arguments left empty do not override params_file (config/detector.yaml by default), so a robot's own params
file stays in charge of everything not given on the command line.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "yolo_compress"
EXECUTABLE = "detector_node"
NODE_NAME = "yolo_detector"
# Launch argument -> parameter, for the arguments that override params_file when given.
PARAMETER_ARGUMENTS = ("tier", "tiers_file", "use_compressed")


def _share(*parts: str) -> str:
    return os.path.join(get_package_share_directory(PACKAGE), *parts)


def _nodes(context):
    """The detector (with only the non-empty arguments as overrides) and, with rviz:=true, RViz."""
    value = {name: LaunchConfiguration(name).perform(context) for name in
             (*PARAMETER_ARGUMENTS, "image_topic", "namespace", "params_file")}
    overrides = {name: value[name] for name in PARAMETER_ARGUMENTS if value[name] != ""}
    if "use_compressed" in overrides:
        overrides["use_compressed"] = overrides["use_compressed"].lower() in ("true", "1", "yes")
    image_topic = value["image_topic"]
    detector = Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        namespace=value["namespace"],
        output="screen",
        emulate_tty=True,
        parameters=[value["params_file"], overrides],
        remappings=[("image", image_topic), ("image/compressed", image_topic + "/compressed")],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        namespace=value["namespace"],
        arguments=["-d", _share("config", "detector.rviz")],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return [detector, rviz]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("tier", default_value="",
                              description="fast | medium | accurate | auto ('' = params_file's)"),
        DeclareLaunchArgument("image_topic", default_value="image", description="camera topic (sensor_msgs/Image); "
                              "with use_compressed the node reads <image_topic>/compressed"),
        DeclareLaunchArgument("use_compressed", default_value="", description="true: subscribe the JPEG/PNG topic"),
        DeclareLaunchArgument("params_file", default_value=_share("config", "detector.yaml"),
                              description="node parameters (YAML)"),
        DeclareLaunchArgument("tiers_file", default_value="", description="tiers.yaml ('' = params_file's)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("rviz", default_value="false", description="true: start RViz on ~/annotated"),
        OpaqueFunction(function=_nodes),
    ])
