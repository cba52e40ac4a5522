# facetrack_ros: `make demo` runs the node graph on a sample clip; `make test` runs every test.
# Both set up the environment first (scripts/setup.sh: venv, pinned wheels, colcon build).
SHELL := /bin/bash
VENV ?= $(HOME)/.cache/facetrack_ros/venv
export VENV
RUN := source scripts/env.sh &&
PYTEST_ARGS ?=

.PHONY: setup test lint demo bench clean

setup:
	@scripts/setup.sh

test: setup
	@$(RUN) pytest $(PYTEST_ARGS)

lint: setup
	@$(RUN) pytest -m lint

demo: setup
	@$(RUN) python scripts/demo.py $(if $(VIDEO),--video $(VIDEO))

bench: setup
	@$(RUN) python scripts/bench_pipeline.py && python scripts/bench_history.py \
		&& python scripts/bench_fleet.py

clean:
	rm -rf build install log demo_output
