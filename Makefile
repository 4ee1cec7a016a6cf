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
ADDON_SRCS := $(wildcard addon/*.cc addon/*.h)
TS_SRCS    := $(shell find src test bench -name '*.ts' 2>/dev/null)
TS_STAMP   := dist/.stamp

.PHONY: all bpf addon ts test test-unit demo bench clean lab-down verifier-figures
all: bpf addon ts

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

$(TS_STAMP): $(TS_SRCS) tsconfig.json package.json
	$(TSC) -p tsconfig.json
	@touch $@

ts: $(TS_STAMP)

# The test command of the README: every test, serially (they share the kernel).
test: all
	bash scripts/run-tests.sh

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
