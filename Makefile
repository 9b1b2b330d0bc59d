# rewardgen: `make run` (default job end to end) and `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: run test test-mjx lint bench sysdeps sysdeps-test install install-test clean

# What a run needs: headless MuJoCo rendering EGL (Debian: libegl1 + libegl-mesa0), the reward
# sandbox bubblewrap (and, started as root, util-linux's setpriv, which Debian always has).
sysdeps:
	@if ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libegl1 libegl-mesa0; \
	else echo "rewardgen: install EGL (libegl1, libegl-mesa0) for headless rendering"; fi
	@# Every worker that loads reward code runs under bubblewrap (Debian package: bubblewrap).
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq bubblewrap; \
	else echo "rewardgen: install bubblewrap (bwrap) to sandbox reward programs"; fi

# Only the report's browser test needs Chromium: `make test` installs it, `make run` does not.
sysdeps-test: sysdeps
	@# The report test opens report.html in headless Chromium (Debian package: chromium).
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; \
	else echo "rewardgen: install chromium to run the report's browser test"; fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# `make run` installs the package alone; `make test` every extra and the test tools.
$(VENV)/.installed-run: pyproject.toml $(VENV)/bin/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/bin/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[all,dev]'
	touch $@ $(VENV)/.installed-run

install: sysdeps $(VENV)/.installed-run

install-test: sysdeps-test $(VENV)/.installed

run: install
	$(VENV)/bin/rewardgen experiment=quickstart

# Two pytest workers: most tests wait on one worker process (a training, an evaluator), so a
# second test keeps the other core busy. --dist loadfile keeps a module's tests on one worker, so
# module fixtures (the adversarial corpus, trained runs) are built once and only
# tests/executors/test_ray.py starts a local Ray cluster. (loadgroup is broken with pytest 9.2:
# xdist renames item._nodeid, which pytest no longer reads.)
TEST_WORKERS ?= 2

test: install-test
	$(VENV)/bin/ruff check rewardgen tests bench
	$(VENV)/bin/mypy rewardgen
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25 -m 'not mjx_compile'

# rl=brax_ppo's end-to-end candidate and MJX/C MuJoCo parity: XLA compiles MJX physics for minutes
# on a CPU, so they run here (or on a GPU machine) and not in make test.
test-mjx: install-test
	$(PY) -m pytest -q -m mjx_compile

lint: install-test
	$(VENV)/bin/ruff check rewardgen tests bench
	$(VENV)/bin/ruff format --check rewardgen tests bench
	$(VENV)/bin/mypy rewardgen

bench: install-test
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
