# dlms_micro developer and CI entry points.
#
#   make test              bootstrap (.venv, npm ci) and run everything:
#                          mpy-cross check, runner self-test, CPython suite,
#                          MicroPython suite (real MicroPython 1.27, 100 KiB heap)
#   make test-cpython      pytest only            (PYTEST_ARGS='-k hdlc -x')
#   make test-micropython  MicroPython suite only (MP_ARGS='-k hdlc -v --heap 120k')
#   make test-runner       self-test of tools/micropython/runner.mjs
#   make mpy-check         every dlms_micro module compiles with mpy-cross; sizes
#   make typecheck-board   mypy of ports/micropython/ and board/ against the ESP32 stubs
#   make bench             tools/bench_alloc.py under CPython and under MicroPython
#   make serve             the demo meter on 127.0.0.1:4059 (wrapper) and :4060
#                          (HDLC over TCP); SERVE_ARGS='--pty --log-level debug'
#   make firmware          real MicroPython v1.27.0 firmware with the stack frozen
#                          in: build/firmware/unix32/micropython (unix, 32-bit)
#                          and build/firmware/qemu/firmware.elf (Cortex-M3);
#                          needs gcc-multilib, gcc-arm-none-eabi,
#                          libnewlib-arm-none-eabi (BOARD=NAME: default board)
#   make test-firmware     the firmware stage of make test: builds, then real
#                          clients read the frozen meter; figures printed
#   make firmware-serve    BOARD=NAME's meter on the unix firmware, 100 KiB heap:
#                          wrapper 127.0.0.1:4059, HDLC over TCP :4060; suite 0
#                          keys: the demo keys of make serve, or KEYS=FILE's;
#                          storage (keys, counters, profiles) in
#                          build/firmware/data/NAME[-KEYFILE]
#   make clean             build outputs and caches; `make distclean` also
#                          removes .venv and node_modules
#
# Needs python3 (>= 3.11, with venv) and Node.js >= 16 with npm.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.dev-installed
MP_DIR := tools/micropython
NODE_STAMP := $(MP_DIR)/node_modules/.npm-ci-done
RUNNER := node $(MP_DIR)/runner.mjs
PYTEST_ARGS ?=
MP_ARGS ?=
SERVE_ARGS ?=
BOARD ?= esp32_devkitc_max3485
FW_UNIX := build/firmware/unix32/micropython

.PHONY: typecheck-board
.PHONY: test test-cpython test-micropython test-runner mpy-check bench serve \
        clean distclean bootstrap check-node firmware firmware-serve test-firmware \
        bench-firmware

# Every part runs even when an earlier one fails, so one CI log shows all
# failures; the MicroPython suite runs last so its closing line ends the log.
test: bootstrap
	@failed=""; \
	$(MAKE) --no-print-directory mpy-check || failed="$$failed mpy-check"; \
	$(MAKE) --no-print-directory typecheck-board || failed="$$failed typecheck-board"; \
	$(MAKE) --no-print-directory test-runner || failed="$$failed test-runner"; \
	$(MAKE) --no-print-directory test-cpython || failed="$$failed test-cpython"; \
	$(MAKE) --no-print-directory test-firmware || failed="$$failed test-firmware"; \
	$(MAKE) --no-print-directory test-micropython || failed="$$failed test-micropython"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi

bootstrap: $(DEV_STAMP) $(NODE_STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV) || { \
	  echo "make: could not create $(VENV) with $(PYTHON) -m venv" \
	       "(on Debian: apt-get install -y python3-venv)"; rm -rf $(VENV); exit 1; }

# Re-installed only when pyproject.toml changes.
$(DEV_STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

check-node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "make: Node.js >= 16 and npm are needed to run the MicroPython suite;" \
	       "not found on PATH (on Debian: apt-get install -y nodejs npm)"; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 16 ? 0 : 1)' || { \
	  echo "make: Node.js >= 16 needed, found $$(node --version)"; exit 1; }

# npm ci again when the lock (or package.json) changes or node_modules is gone.
$(NODE_STAMP): $(MP_DIR)/package-lock.json $(MP_DIR)/package.json | check-node
	cd $(MP_DIR) && npm ci --no-audit --no-fund
	@touch $@

mpy-check: $(DEV_STAMP)
	$(VPY) tools/mpy_check.py

# mypy over ports/micropython/ and board/ against the ESP32 stubs (wrong
# machine.UART/Pin keywords, read() that may be None); installs the pinned
# stubs into build/esp32-stubs on first use.
typecheck-board: $(DEV_STAMP)
	$(VPY) tools/typecheck_board.py

test-runner: bootstrap
	node $(MP_DIR)/selftest.mjs

# pytest exits 5 when it collected no test: that is a failure here too.
test-cpython: $(DEV_STAMP)
	@$(VPY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make: pytest ran no tests"; fi; \
	exit $$status

# tests/portable_ecc/: the pure P-256 code; its big ints leave ~1 MB of
# garbage per scalar multiplication, which this runner never collects inside
# a test (a board does): its own, larger heap.
test-micropython: bootstrap
	$(RUNNER) $(MP_ARGS)
	$(RUNNER) $(MP_ARGS) --tests tests/portable_ecc --heap 2500k

bench: bootstrap
	@test -f tools/bench_alloc.py || { echo "make: tools/bench_alloc.py does not exist yet"; exit 1; }
	$(VPY) tools/bench_alloc.py
	@# bytes and frames on the wire reading 96 load-profile rows (real clients)
	$(VPY) tools/bench_wire.py
	@# a fleet of 10,000 simulated meters read by 200 clients (wall time,
	@# requests/s, server CPU, RSS) and the CPU of a plain GET (docs/fleet.md)
	$(VPY) tools/bench_fleet.py
	@# 640 KiB: the .mpy code of every module the benchmark loads (a board
	@# keeps it frozen in flash), the GCM tables of several backends side by
	@# side and prebuilt ciphered requests; per-operation figures are deltas
	$(RUNNER) --heap 640k --package dlms_micro --package ports/micropython/dlms_micro_mp \
	  --package tools/benchkit --script tools/bench_alloc.py
	@# the demo meter's whole table built under MicroPython: heap after boot
	$(VPY) tools/bench_demo_heap.py --prepare
	$(VPY) tools/bench_demo_heap.py
	$(RUNNER) --heap 640k --package dlms_micro --package build/bench --script tools/bench_demo_heap.py
	@# the sources: heap and CPU per poll, alone and bound to the shipped
	@# retrofit definitions (values into objects), heap after boot of each
	$(VPY) tools/bench_sources.py --prepare
	$(VPY) tools/bench_sources.py
	$(RUNNER) --heap 640k --package dlms_micro --package build/bench_sources \
	  --package tools/benchkit --script tools/bench_sources.py
	@# an HLS-ECDSA association's cost to the meter (suites 1 and 2): CPython
	@# (pure and cryptography), MicroPython (no GC inside the script: no cap)
	$(VPY) tools/bench_hls_ecdsa.py
	$(RUNNER) --no-cap --script tools/bench_hls_ecdsa.py
	@# the real frozen builds: heap after boot, bytes per request, GC pauses,
	@# Cortex-M3 instructions per request, image sizes
	$(MAKE) --no-print-directory bench-firmware

# Real firmware (tools/firmware/build.py): mpy-cross, unix 32-bit, qemu
# MPS2_AN385; from ../shared/micropython's pinned tarball (sha256 checked) or
# MICROPY_SRC=/path/to/micropython (tag v1.27.0).
firmware:
	$(PYTHON) tools/firmware/build.py --board $(BOARD) -j2

# The firmware stage: build (a missing compiler skips it with one line,
# except under CI=true), then tests/firmware/ (real clients read the frozen
# meter over TCP, HDLC on the QEMU UART), the portable suite on the unix
# firmware, and the figures of the real builds.
test-firmware: $(DEV_STAMP)
	@$(PYTHON) tools/firmware/build.py --check-tools || { \
	  if [ "$$CI" = "true" ]; then exit 1; fi; \
	  echo "make: firmware stage skipped (outside CI)"; exit 0; }; \
	$(PYTHON) tools/firmware/build.py --board $(BOARD) -j2 && \
	DLMS_FIRMWARE_TESTS=1 $(VPY) -m pytest -p no:cacheprovider -q tests/firmware && \
	$(PYTHON) tools/firmware/run_portable.py && \
	$(VPY) tools/firmware/bench_fw.py --short

# Coverage-guided fuzzing (tools/fuzz.py, atheris): every target in turn for
# FUZZ_SECONDS each (findings in build/fuzz/crashes/<target>/, new inputs in
# build/fuzz/corpus/<target>/); make test replays the committed corpora.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: $(DEV_STAMP)
	$(VPY) tools/fuzz.py all -s $(FUZZ_SECONDS)

bench-firmware: $(DEV_STAMP) firmware
	$(VPY) tools/firmware/bench_fw.py
	$(FW_UNIX) -X heapsize=100k tools/bench_hls_ecdsa.py
	$(VPY) tools/bench_hls_ecdsa.py --qemu

# The keys are provisioned into the data directory on its first start, as
# tools/provision.py provisions a board; one directory per board and key file.
KEYS ?=
FW_DATA = build/firmware/data/$(BOARD)$(if $(KEYS),-$(basename $(notdir $(KEYS))))
firmware-serve: firmware
	@mkdir -p build/firmware/data
	$(FW_UNIX) -X heapsize=100k -m fw_main --board $(BOARD) --data $(FW_DATA) \
	  --keys $(if $(KEYS),$(KEYS),demo) $(SERVE_ARGS)

# Serving needs the package and its two dependencies only (pyserial,
# cryptography): no test tools, no Node.js. A .venv that has the dev extras
# already has them.
BASE_STAMP := $(VENV)/.base-installed
$(BASE_STAMP): pyproject.toml | $(VPY)
	@if [ -f $(DEV_STAMP) ] && [ $(DEV_STAMP) -nt pyproject.toml ]; then :; else \
	  $(VPY) -m pip install --quiet --disable-pip-version-check -e .; fi
	@touch $@

serve: $(BASE_STAMP)
	$(VENV)/bin/dlms-micro serve $(SERVE_ARGS)

clean:
	rm -rf build build-mpy .pytest_cache .hypothesis
	find . \( -path ./$(VENV) -o -path ./.git -o -name node_modules \) -prune -o \
	  \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(MP_DIR)/node_modules
