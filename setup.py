"""ament_python build of yolo_compress; also a plain pip package with `offline` and `test` extras."""

from glob import glob

from setuptools import find_packages, setup

package_name = "yolo_compress"

# The robot needs only the runtime set; torch and friends stay on the workstation. Python deps are
# extras, not install_requires: on a ROS machine numpy/cv2 come from apt (package.xml) without pip
# metadata, and setuptools-generated console scripts refuse to start when install_requires is unmet.
RUNTIME = ["numpy>=1.24", "opencv-python-headless>=4.8,<5", "onnxruntime>=1.17", "pyyaml"]
OFFLINE = ["torch>=2.1", "onnx>=1.15", "torch-pruning>=1.6", "rosbags>=0.10", "tqdm", "matplotlib"]
TEST = ["pytest<9", "pycocotools", "ruff", "colcon-common-extensions"]

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, package_name + ".*"]),
    package_data={package_name + ".models": ["cfgs/*.cfg"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*")),
        # Executables for `ros2 run` / launch_ros Node(): <prefix>/lib/<package>/<exe> (pip puts console
        # scripts in bin/ only; this sh launcher keeps its exec bit).
        ("lib/" + package_name, ["libexec/detector_node"]),
    ],
    install_requires=["setuptools"],
    extras_require={"runtime": RUNTIME, "offline": RUNTIME + OFFLINE, "test": TEST},
    zip_safe=True,
    maintainer="yolo_compress developers",
    maintainer_email="team@yolo-compress.dev",
    description="Compressed YOLO detectors on a ROS 2 robot camera, and the tools that make them.",
    license="Apache-2.0",
    entry_points={"console_scripts": ["detector_node = yolo_compress.ros.detector_node:main"]},
)
