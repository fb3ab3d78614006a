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

## test: the whole test suite (Swift and the Python tools).
test: bootstrap test-swift test-python

test-swift:
	swift build --build-tests $(SWIFT_FLAGS)
	swift test --skip-build $(SWIFT_FLAGS)

test-python:
	python3 -m pytest -q Tools/tests

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
