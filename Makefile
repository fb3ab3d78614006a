# The two entry points of the README. Both run Tools/bootstrap.sh first, so they work on a fresh
# Debian 12 machine with Swift installed.
SWIFT_FLAGS ?=
# OpenBLAS 0.3.21 misbehaves with some kernels on newer CPUs: tests and CI pin the Haswell ones
# (as the development machines do), unless the caller chose otherwise.
export OPENBLAS_CORETYPE ?= Haswell
.PHONY: demo test test-swift test-python test-sanitizers fuzz build release bootstrap

bootstrap:
	@bash Tools/bootstrap.sh

## demo: the main job end to end on a bundled sample.
demo: bootstrap
	@bash Tools/demo.sh

## test: the whole test suite (Swift, the Python package and its tools).
test: bootstrap test-swift test-python

test-swift:
	swift build --build-tests $(SWIFT_FLAGS)
	swift test --skip-build $(SWIFT_FLAGS)

# python/ (package etok, its tools in etok.tools) from this checkout without installing it
# (PYTHONPATH=python; children that run `python3 -m etok.tools` see it too), against the CLI and
# the C library built in the same configuration, found by path.
test-python:
	swift build --product etok $(SWIFT_FLAGS)
	swift build --product etok_c $(SWIFT_FLAGS)
	BIN="$$(swift build --show-bin-path $(SWIFT_FLAGS))" && ETOK_CLI="$$BIN/etok" ETOK_LIBRARY="$$BIN/libetok_c.so" \
		PYTHONPATH="$(CURDIR)/python$${PYTHONPATH:+:$$PYTHONPATH}" python3 -m pytest -q python/tests

## test-sanitizers: the Swift tests under AddressSanitizer and ThreadSanitizer (CI runs it too).
test-sanitizers: bootstrap
	bash Tools/sanitizers.sh

## fuzz: the .etok reader and the model-file fuzzers (libFuzzer, AddressSanitizer), FUZZ_SECONDS
## each after their release builds (CI runs it; Tools/fuzz/README.md). Fails on any finding.
FUZZ_SECONDS ?= 60
fuzz: bootstrap
	bash Tools/fuzz/run.sh --seconds $(FUZZ_SECONDS)
	bash Tools/fuzz/model/run.sh $(FUZZ_SECONDS)

build:
	swift build $(SWIFT_FLAGS)

release:
	swift build -c release
