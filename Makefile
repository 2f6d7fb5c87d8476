# A thin wrapper around cmake.  `make test` and `make demo` install what is
# missing (Debian packages, through scripts/install-deps.sh) and build first.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo clean

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

clean:
	rm -rf $(BUILD)

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
