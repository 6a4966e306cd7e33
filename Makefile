# elmbox build, set-up, tests and demo. Every target that needs tools installs
# them first (idempotently), so a fresh machine with only Rust needs nothing else.

SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(CURDIR)/target
WASI_SDK := $(TARGET_DIR)/wasi-sdk
GUEST_WASM := $(TARGET_DIR)/wasm32-wasip1/release/elmbox_guest.wasm
ELMBOX := $(TARGET_DIR)/release/elmbox
FIXTURES := $(TARGET_DIR)/fixtures
APPS := counter wordcount timers

export WASI_SDK
export ELMBOX_GUEST_WASM := $(GUEST_WASM)

.PHONY: setup guest build fixtures test demo clean

## setup: Debian packages for compiling QuickJS to wasm, the rustup target, and
## a wasi-sdk-shaped folder of symlinks so rquickjs-sys uses them instead of
## downloading a wasi-sdk.
setup: $(WASI_SDK)/.ready

$(WASI_SDK)/.ready: .ci/setup.sh
	bash .ci/setup.sh "$(WASI_SDK)"
	touch $@

guest: setup
	$(CARGO) build --release -p elmbox-guest --target wasm32-wasip1

build: guest
	$(CARGO) build --release -p elmbox --bin elmbox
