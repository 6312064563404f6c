# The two quickstart commands (see README): `make demo` and `make test`.
# Both create ./.venv on first use and install posepipe from the lock file (requirements.lock,
# every package pinned, so nothing is resolved at install time). `make lock` refreshes the lock.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
SHARED ?= $(abspath ../shared)
export POSEPIPE_MODEL_DIR ?= $(SHARED)/models
export POSEPIPE_SHARED_DIR ?= $(SHARED)
# The CPU build of torch (on a CUDA machine, install the matching CUDA build instead). torch is
# installed by pip, not from the lock, so each machine takes the build that fits it.
TORCH ?= torch==2.13.0
UV_VERSION ?= uv==0.13.9

.PHONY: demo test install lock

install: $(VENV)/.installed

# --compile-bytecode: the .pyc files are written at install, so no process (the driver, each Ray worker)
# compiles the dependencies' sources again at import, even where PYTHONDONTWRITEBYTECODE is set (2.4 s
# per process on a 2-core machine).
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)" "$(UV_VERSION)"
	$(UV) pip install -q --compile-bytecode --python $(PY) -r requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	$(UV) pip install -q --python $(PY) --no-deps controlnet-aux==0.0.10  # tests/export load only its open_pose/util.py (draw_bodypose) as the drawing reference
	touch $@

# Re-resolve every dependency (all extras, Python 3.10+, every platform) into requirements.lock.
lock: $(VENV)/.installed
	$(UV) pip compile pyproject.toml --extra dev --no-emit-package torch --universal \
		--python-version 3.10 -o requirements.lock

demo: install
	$(VENV)/bin/posepipe run --config jobs/sample-media.yaml

test: install
	$(PY) -m pytest -q -ra tests
