# A thin wrapper around cmake.  `make test` and `make demo` install what is
# missing (Debian packages, through scripts/install-deps.sh) and build first.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo clean install

all: build

deps:
	@sh scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@sh scripts/demo.sh $(BUILD)

# Transfer learning on Fashion-MNIST (scripts/demo-transfer.sh): features of
# classes 0-4 reused for classes 5-9 from 100 images, three ways side by side.
.PHONY: demo-transfer
demo-transfer: build
	@sh scripts/demo-transfer.sh $(BUILD)

clean:
	rm -rf $(BUILD)

# netc, libnetrt, its headers, netrt.pc and the CMake package netrt under
# PREFIX (docs/installation.md).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The whole suite with netc, libnetrt and the emitted programs built with
# AddressSanitizer and UndefinedBehaviorSanitizer.
# (UBSan halts on the first error through UBSAN_OPTIONS rather than
# -fno-sanitize-recover, which makes clang -O2 take minutes on emitted code.)
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer
.PHONY: test-asan
test-asan: deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_C_FLAGS="$(SAN)" -DCMAKE_EXE_LINKER_FLAGS="$(SAN)" >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && NETC_CFLAGS="$(SAN)" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    ctest --output-on-failure -j $(JOBS)

# libFuzzer harnesses (tests/fuzz, docs/testing.md): built with clang into
# $(BUILD)-fuzz, libnetrt and the compiler core instrumented for coverage and
# built with ASan and UBSan; each harness fuzzes for FUZZ_SECONDS; any crash,
# sanitizer report, leak, timeout or out-of-memory fails.  FUZZ_HARNESSES
# picks some of frontend, safetensors, npy, idx.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?=
FUZZ_SAN = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
.PHONY: fuzz fuzz-build fuzz-merge
fuzz-build: deps
	@cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETC_FUZZ=ON \
	    -DCMAKE_C_FLAGS="$(FUZZ_SAN)" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzzers

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

# Adds to the committed corpora (tests/fuzz/corpus/<h>) the inputs of the
# scratch corpora that reach code they do not (libFuzzer's -merge=1).
fuzz-merge: fuzz-build
	@sh tests/fuzz/run.sh $(BUILD)-fuzz merge $(FUZZ_HARNESSES)

# Data-parallel training (docs/distributed.md): LeNet-5 on Fashion-MNIST, one
# process against 2 ranks over MPI, 5 epochs, seeds 1-3 (tools/bench_dist.sh).
# Measure on a quiet machine.
.PHONY: bench-dist
bench-dist: build
	sh tools/bench_dist.sh $(BUILD)/netc

# Every zoo model torchvision has, at full size, built with netc at -O0 and
# -O2 against torchvision (random weights, fixed seed; tools/conformance.py),
# each program run at 1 and 2 threads (the same bytes); one training step's
# gradients; and each model exported by torch.onnx.export, netc import'ed,
# built and run (the ONNX column, docs/interop.md).  Installs python3-torch
# and python3-torchvision (scripts/install-bench-deps.sh), so it is not part
# of `make test`.
# CONFORMANCE_ARGS passes options, e.g. "--models resnet50 --opt O2",
# "--no-train --no-onnx" or "--target generic" (default: the host's best).
CONFORMANCE_ARGS ?=
.PHONY: conformance
conformance: build
	@sh scripts/install-bench-deps.sh
	/usr/bin/python3 tools/conformance.py --netc $(BUILD)/netc --work $(BUILD)/conformance $(CONFORMANCE_ARGS)

# netc -O2 against PyTorch (eval, no_grad, the same thread count), each zoo
# model torchvision has and LeNet-5, at each batch size: median ms per batch
# of netc and of PyTorch eager, channels-last and TorchScript
# (optimize_for_inference), netc's ratio to the best of the three, and netc's
# GFLOP/s as a percentage of the one-core peak that tools/peak.c measures;
# netc's output must agree with PyTorch's within 1e-4 of its scale
# (tools/bench.py, docs/performance.md).  Installs python3-torch,
# python3-torchvision and OpenBLAS (scripts/install-bench-deps.sh: Debian's
# PyTorch otherwise calls the reference BLAS), so it is not part of `make
# test`.  BENCH_MODELS picks models (default: all, smallest first),
# BENCH_BATCHES the batch sizes, BENCH_THREADS the threads of PyTorch and of
# netc's programs (--threads), BENCH_BUDGET the seconds of timed runs per measurement;
# BENCH_ARGS passes other options, e.g. "--markdown build/bench.md" or
# "--all-cores 2" (a column of PyTorch at 2 threads).
BENCH_MODELS ?=
BENCH_BATCHES ?= 1,8
BENCH_THREADS ?= 1
BENCH_BUDGET ?= 4
BENCH_ARGS ?=
.PHONY: bench
bench: build
	@sh scripts/install-bench-deps.sh
	/usr/bin/python3 tools/bench.py --netc $(BUILD)/netc --work $(BUILD)/bench \
	    $(if $(BENCH_MODELS),--models $(BENCH_MODELS)) --batches $(BENCH_BATCHES) \
	    --threads $(BENCH_THREADS) --budget $(BENCH_BUDGET) $(BENCH_ARGS)

# Training speed against PyTorch's (tools/bench_train.py, docs/performance.md):
# images per second of netc's trainers and of PyTorch in NCHW and
# channels-last, LeNet-5 and the two small Fashion-MNIST nets of
# examples/bench/ on Debian's dataset-fashion-mnist, ResNet-18 on random
# 224x224 images.  Not part of `make test`.  BENCH_TRAIN_ARGS passes options,
# e.g. "--models lenet5 --threads 2 --cpus 0,1 --markdown build/bench-train.md".
BENCH_TRAIN_ARGS ?=
.PHONY: bench-train
bench-train: build
	@sh scripts/install-bench-deps.sh
	/usr/bin/python3 tools/bench_train.py --netc $(BUILD)/netc --work $(BUILD)/bench-train $(BENCH_TRAIN_ARGS)
