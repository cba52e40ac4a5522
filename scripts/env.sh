# Source this to use the built package: the project venv (ROS 2 underlay) plus install/setup.bash.
#   source scripts/env.sh
_facetrack_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "${VENV:-$HOME/.cache/facetrack_ros/venv}/bin/activate"
export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:-$VIRTUAL_ENV}"
# shellcheck disable=SC1091
source "$_facetrack_repo/install/setup.bash"
# ultralytics must never try to install packages or reach its hub from a robot's test run.
export YOLO_OFFLINE="${YOLO_OFFLINE:-1}"
unset _facetrack_repo
