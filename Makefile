# facetrack_ros: `make demo` runs the node graph on a sample clip (with `ros2 launch` where the
# ROS 2 launch tools are installed); `make test` runs every test, the launch-level ones included.
# Both set up the environment first (scripts/setup.sh: venv, pinned wheels, launch and CLI test
# tools, colcon build).
SHELL := /bin/bash
VENV ?= $(HOME)/.cache/facetrack_ros/venv
export VENV
RUN := source scripts/env.sh &&
PYTEST_ARGS ?=

.PHONY: setup test test-launch lint demo bench clean

setup:
	@scripts/setup.sh

test: setup
	@$(RUN) pytest $(PYTEST_ARGS)

test-launch: setup
	@$(RUN) pytest test/launch $(PYTEST_ARGS)

lint: setup
	@$(RUN) pytest -m lint

demo: setup
	@$(RUN) python scripts/demo.py $(if $(VIDEO),--video $(VIDEO)) $(if $(MODEL),--model $(MODEL)) \
		$(if $(RUNNER),--runner $(RUNNER))

bench: setup
	@$(RUN) python scripts/bench_pipeline.py && python scripts/bench_image_transport.py \
		&& python scripts/bench_history.py && python scripts/bench_fleet.py

clean:
	rm -rf build install log demo_output

# Identity evaluation (scripts/eval_identity.py): the graph on composed and shared clips with
# known truth; e.g. `make eval EVAL_ARGS="--runs 3 --load"`.
.PHONY: eval
eval: setup
	@$(RUN) python scripts/eval_identity.py $(EVAL_ARGS)
