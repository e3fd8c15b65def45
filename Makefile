# scantag: `make run` starts the server on the embedded defaults; `make test` runs every test.

CARGO ?= cargo
SEARCH_BENCH_ARGS ?= --customers 1000000 --buffer-pool-mib 4096
CAPTURE_BENCH_ARGS ?=
RULES_BENCH_ARGS ?=
RULES_SCALE_ARGS ?= --buffer-pool-mib 8192
SDK_VENV ?= target/sdk-venv
SIMULATOR := miniprogram-mock/simulator

.PHONY: run test test-mysql openapi lint sdk-check schemathesis simulator bench bench-search bench-capture bench-rules

## Start the API on http://127.0.0.1:8080 (SQLite + in-process cache + bundled WeChat mock
## unless SCANTAG_* settings say otherwise).
run:
	$(CARGO) run -p scantag-api --bin scantag -- serve

## All tests on SQLite; when SCANTAG_TEST_MYSQL_URL and SCANTAG_TEST_REDIS_URL are set, the
## domain's database tests and the end-to-end suite run again on MySQL/MariaDB + Redis.
test: simulator
	$(CARGO) test --workspace
	@if [ -n "$$SCANTAG_TEST_MYSQL_URL" ] || [ -n "$$SCANTAG_TEST_REDIS_URL" ]; then \
		$(MAKE) --no-print-directory test-mysql; \
	else \
		echo "SCANTAG_TEST_MYSQL_URL/SCANTAG_TEST_REDIS_URL not set: skipped the MySQL + Redis run"; \
	fi

test-mysql:
	SCANTAG_TEST_BACKEND=mysql $(CARGO) test -p scantag-domain
	SCANTAG_TEST_BACKEND=mysql $(CARGO) test -p scantag-e2e --test e2e

## Regenerate the committed OpenAPI document from the code, and the simulator's client types
## from the document.
openapi: $(SIMULATOR)/node_modules/.package-lock.json
	$(CARGO) run -q -p scantag-api --bin scantag -- openapi > openapi/openapi.json
	cd $(SIMULATOR) && npm run --silent generate

## The mini-program simulator (TypeScript, client generated from openapi/openapi.json): fails
## when its committed client types drift from the document or no longer type-check.
simulator: $(SIMULATOR)/node_modules/.package-lock.json
	mkdir -p target
	cd $(SIMULATOR) && npx openapi-typescript ../../openapi/openapi.json -o ../../target/simulator-schema.d.ts --silent
	@diff -q $(SIMULATOR)/src/schema.d.ts target/simulator-schema.d.ts >/dev/null || \
		{ echo "$(SIMULATOR)/src/schema.d.ts is stale: run make openapi" >&2; exit 1; }
	cd $(SIMULATOR) && npm run --silent typecheck && npm run --silent build

$(SIMULATOR)/node_modules/.package-lock.json: $(SIMULATOR)/package-lock.json
	cd $(SIMULATOR) && npm ci --no-audit --no-fund

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Generate a Python client from the committed document: fails if a real generator rejects it.
sdk-check:
	python3 -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet --disable-pip-version-check openapi-python-client ruff
	rm -rf target/sdk-python
	PATH="$(CURDIR)/$(SDK_VENV)/bin:$$PATH" openapi-python-client generate --path openapi/openapi.json \
		--config openapi/python-client.yml --output-path target/sdk-python --overwrite --fail-on-warning

## Property-based API tests (tests/schemathesis/run.sh): schemathesis against a live server on
## SQLite, and on MariaDB/MySQL + Redis when SCANTAG_TEST_MYSQL_URL is set; builds the debug
## binary unless SCANTAG_BIN names one. schemathesis is pinned so that a new release's checks
## do not change what passes.
SCHEMATHESIS_VENV ?= target/schemathesis-venv
SCHEMATHESIS_VERSION ?= 4.32.5
schemathesis:
	python3 -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)
	@if [ -z "$$SCANTAG_BIN" ]; then echo "$(CARGO) build -p scantag-api --bin scantag"; \
		$(CARGO) build -p scantag-api --bin scantag; fi
	@status=0; export SCHEMATHESIS="$(CURDIR)/$(SCHEMATHESIS_VENV)/bin/schemathesis"; \
	tests/schemathesis/run.sh sqlite || status=1; \
	if [ -n "$$SCANTAG_TEST_MYSQL_URL" ]; then \
		tests/schemathesis/run.sh mysql || status=1; \
	else \
		echo "SCANTAG_TEST_MYSQL_URL not set: skipped the MySQL + Redis run"; \
	fi; \
	exit $$status

## Both benchmarks, on MariaDB/MySQL (--mysql-url) and Redis (--redis-url); see README.md.
bench: bench-search bench-capture bench-rules

## Seed customers with skewed tags, build the search index, then measure tag-filtered search
## over HTTP (index, cache bypassed, and warm) against the server's SQL and a relational
## division, the bitmaps alone and searches right after writes, checking every answer;
## e.g. make bench-search SEARCH_BENCH_ARGS="--customers 10000000 --buffer-pool-mib 12288 --division-queries 10".
bench-search:
	$(CARGO) run --release -p scantag-bench -- search $(SEARCH_BENCH_ARGS)

## Captures from 64 concurrent visitors (new and repeat), closed loop and at offered rates,
## next to a bare INSERT + COMMIT loop; then count rows to prove nothing was lost or doubled.
bench-capture:
	$(CARGO) run --release -p scantag-bench -- capture $(CAPTURE_BENCH_ARGS)

## Capture and order cost with 50 rules against none, in one run, and every rule tag checked;
## then the engine over a large tenant on a manual clock (1M customers, 5M orders by default):
## the backfill next to one GROUP BY, a day of due transitions, a re-check, capture and order
## latency with 20 rules, checked by brute force; it gives MariaDB an 8 GiB buffer pool for
## the run (the 1M tenant's ~5 GiB fit), and back after it;
## e.g. make bench-rules RULES_BENCH_ARGS="--visits 2000" RULES_SCALE_ARGS="--customers 200000 --buffer-pool-mib 8192".
bench-rules:
	$(CARGO) run --release -p scantag-bench -- rules $(RULES_BENCH_ARGS)
	$(CARGO) run --release -p scantag-bench -- rules-at-scale $(RULES_SCALE_ARGS)
