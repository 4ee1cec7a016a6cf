# bae build: BPF objects, the N-API addon and the TypeScript control plane.
# Every target is a file with its real inputs as prerequisites, so a second `make`
# with no change does nothing.

SHELL      := /bin/bash
NODE       ?= node
# npm's `nodedir` user setting is going away: hand node-gyp the headers of the Node that runs us.
NODEDIR    ?= $(shell $(NODE) -p "require('path').resolve(process.execPath, '../..')")
NODE_GYP   := $(NODE) node_modules/node-gyp/bin/node-gyp.js
TSC        := $(NODE) node_modules/typescript/bin/tsc
CLANG      ?= clang
BPFTOOL    ?= bpftool
ARCH_INC   := /usr/include/$(shell gcc -dumpmachine)
TARGET_ARCH:= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

BPF_SRCS   := $(wildcard bpf/*.bpf.c) $(wildcard bpf/test/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,build/bpf/%.o,$(BPF_SRCS))
BPF_HDRS   := $(wildcard bpf/*.h)
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -mcpu=v3 -D__TARGET_ARCH_$(TARGET_ARCH) \
              -Ibuild -Ibpf -I$(ARCH_INC)

ADDON      := addon/build/Release/bae.node
ADDON_SRCS := $(wildcard addon/*.cc addon/*.h addon/delay_line/*.cc addon/delay_line/*.h) bpf/bae.h bpf/policy_abi.h bpf/delay_abi.h
TS_SRCS    := $(shell find src test bench -name '*.ts' 2>/dev/null)
TS_STAMP   := dist/.stamp

# The live view's page (web/) bundled by esbuild into dist/web/ (scripts/build-web.mjs).
WEB_SRCS   := $(wildcard web/*)
WEB_OUT    := dist/web/app.js

.PHONY: all bpf addon ts web test test-unit test-kernels depcheck lint demo bench clean lab-down verifier-figures abi
all: bpf addon ts web

# vmlinux.h from the running kernel's BTF (CO-RE); regenerated only when missing.
build/vmlinux.h:
	@mkdir -p build
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

build/bpf/%.o: bpf/%.bpf.c $(BPF_HDRS) build/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Bench fixtures that are bae.bpf.c built with other defines.
build/bpf/test/bae_shared.o build/bpf/test/bae_core.o: bpf/bae.bpf.c

bpf: $(BPF_OBJS)

addon/build/Makefile: addon/binding.gyp
	cd addon && $(NODE) ../node_modules/node-gyp/bin/node-gyp.js configure --nodedir=$(NODEDIR) --loglevel=warn

$(ADDON): addon/build/Makefile $(ADDON_SRCS)
	cd addon && $(NODE) ../node_modules/node-gyp/bin/node-gyp.js build --nodedir=$(NODEDIR) --loglevel=warn -j 2
	@touch $@

addon: $(ADDON)

# The kernel ABI in TypeScript (struct layouts and enums), generated from the BTF of bae.o by
# scripts/gen-abi.mjs. `make abi` writes it; every build checks that it is what the object says,
# so a stale file fails the build instead of misreading a map.
ABI_OBJS   := build/bpf/bae.o
ABI_GEN    := src/datapath/abi.gen.ts

abi: $(ABI_OBJS)
	$(NODE) scripts/gen-abi.mjs $(ABI_OBJS) > $(ABI_GEN).tmp && mv $(ABI_GEN).tmp $(ABI_GEN)
	@touch build/.abi-checked

build/.abi-checked: $(ABI_OBJS) $(ABI_GEN) scripts/gen-abi.mjs
	$(NODE) scripts/gen-abi.mjs --check $(ABI_GEN) $(ABI_OBJS)
	@touch $@

$(TS_STAMP): $(TS_SRCS) tsconfig.json package.json build/.abi-checked
	$(TSC) -p tsconfig.json
	@touch $@

ts: $(TS_STAMP)

$(WEB_OUT): $(WEB_SRCS) scripts/build-web.mjs package.json
	$(NODE) scripts/build-web.mjs

web: $(WEB_OUT)

# The layers of src/ (docs/development.md "Layers"): no cycle, no import up the layer diagram or
# past an area's index.ts. Rules: .dependency-cruiser.cjs. The stamp holds while no input changes.
DEPCRUISE  := $(NODE) node_modules/dependency-cruiser/bin/dependency-cruise.mjs
ESLINT     := $(NODE) node_modules/eslint/bin/eslint.js

build/.depcheck-ok: $(TS_SRCS) .dependency-cruiser.cjs tsconfig.json package.json
	@mkdir -p build
	$(DEPCRUISE) src test bench --config .dependency-cruiser.cjs
	@touch $@

depcheck: build/.depcheck-ok

# ESLint's recommended rules with typescript-eslint's (eslint.config.mjs) over src/ test/ bench/.
build/.lint-ok: $(TS_SRCS) eslint.config.mjs package.json
	@mkdir -p build
	$(ESLINT) src test bench
	@touch $@

lint: build/.lint-ok

# The test command of the README: the dependency rules and the lint, then every test, serially
# (they share the kernel).
test: all depcheck lint
	bash scripts/run-tests.sh

# The tests that need no root and no kernel (files marked `// test-unit:`), as any user, in seconds.
test-unit: all
	bash scripts/run-tests.sh --unit

# The kernel matrix: the kernel-facing tests and the demo in QEMU guests running Debian 12's 6.1
# and 6.12 kernels (scripts/kernel-matrix.sh; KERNELS=6.1 for one line only).
test-kernels: all
	bash scripts/kernel-matrix.sh

demo: all
	bash scripts/demo.sh

bench: all
	bash scripts/run-bench.sh

# Records the verifier's figures of every program on the running kernel in
# bpf/verifier-figures.json (test/bpf/verifier-budget.test.ts holds them to it).
verifier-figures: all
	$(NODE) dist/bench/verifier.js --record

clean:
	rm -rf build dist addon/build
