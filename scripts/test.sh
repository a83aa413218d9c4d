#!/usr/bin/env bash
# The test command of the README (and of CI): lint, then the whole pytest suite on real ROS 2 middleware.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# rclpy, Fast DDS and the test-only vision_msgs into the venv (a no-op once done, and a one-line notice
# when ../shared/ros is absent), then its environment, which must be in place before python starts.
bash scripts/ros_setup.sh "$VENV"
if [ -f "$VENV/yolo_ros_env.sh" ]; then
  # shellcheck disable=SC1091
  source "$VENV/yolo_ros_env.sh"
fi
ruff check .
python -m pytest -q "$@"
