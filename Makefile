# tunekv: make cluster | make test | make bench | make build
# Every target installs dependencies first when node_modules is missing.

SHELL := /bin/bash
DEPS := node_modules/.package-lock.json
CLI := node dist/src/cli/main.js

.PHONY: all build test typecheck cluster bench clean

all: build

$(DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(DEPS)

build: $(DEPS)
	npx tsc -p tsconfig.build.json
	@chmod +x dist/src/cli/main.js

typecheck: $(DEPS)
	npx tsc -p tsconfig.json --noEmit

# The whole suite: unit, simulation and real-process tests.
test: build typecheck
	npx tap

# A local 3-node cluster in the foreground (n1..n3 on 127.0.0.1:7001-7003,
# data under ./data/cluster). Ctrl-C stops every node.
cluster: build
	$(CLI) cluster start --nodes 3 --base-port 7001 --dir ./data/cluster

bench: build
	$(CLI) bench

clean:
	rm -rf dist .tap
