# The two quickstart commands (see README): `make demo` and `make test`.
# Both create ./.venv on first use and install posepipe with everything its tests need.
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
export POSEPIPE_MODEL_DIR ?= $(SHARED)/models
export POSEPIPE_SHARED_DIR ?= $(SHARED)

.PHONY: demo test install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch (on a CUDA machine, install the matching CUDA build instead).
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev,s3,video]"
	touch $@

demo: install
	$(VENV)/bin/posepipe run --config jobs/sample-media.yaml

test: install
	$(PY) -m pytest -q -ra tests
