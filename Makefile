# callwatch: every target installs what it needs, idempotently (apt packages, a venv).
# `make run`  runs the main job; `make test` runs the whole test suite; `make bench` the benchmarks.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Runtime needs PortAudio and the ALSA pulse plugin; the tests add a real PulseAudio server,
# Prometheus (with promtool), Chromium for the nudge page, and espeak-ng/flite/festival/sox/codec2 recordings.
APT_RUN := libportaudio2 libasound2-plugins libsndfile1
APT_TEST := $(APT_RUN) pulseaudio pulseaudio-utils prometheus chromium espeak-ng flite festival festvox-kallpc16k sox codec2-examples curl

.PHONY: run test bench lint setup setup-test clean
run: setup
	$(BIN)/callwatch demo

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup-test
	$(BIN)/python -m bench.run_all

lint: setup-test
	$(BIN)/ruff check .

setup: $(VENV)/.installed-run
setup-test: $(VENV)/.installed-test

define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi
endef

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(call apt_install,$(APT_RUN))
	$(BIN)/pip install -q -e '.[neural]'
	# silero checks talk-overs in street-like noise ([detectors] confirm_vad); its wheel carries
	# the ONNX model, and --no-deps keeps torch (2 GB) out of the venv.
	$(BIN)/pip install -q --no-deps 'silero-vad>=5.1'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(call apt_install,$(APT_TEST))
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
