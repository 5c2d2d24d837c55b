# Two commands do everything on a fresh Debian/Ubuntu machine with Python 3.11+:
#   make demo   - set up, generate the embedded dataset, run the whole case study
#   make test   - set up, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.8

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 240
export PREFECT_LOGGING_LEVEL ?= INFO
export TF_CPP_MIN_LOG_LEVEL ?= 2
# ephemeral servers need no telemetry; its heartbeat also races the SQLite migration
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: demo test env system-deps lock bench clean audit

demo: env
	$(BIN)/dvtrain simulate --outdir demo-data
	$(BIN)/dvtrain run --config examples/demo.yaml

test: env system-deps
	$(BIN)/python -m pytest -q tests
	$(MAKE) --no-print-directory audit

# pip-audit over requirements.lock, from its own virtualenv (scripts/audit.py: fails on a
# known vulnerability with a fix; says so, loudly, when the advisory service is unreachable)
audit: .venv-audit/.installed
	$(BIN)/python scripts/audit.py .venv-audit/bin/pip-audit

.venv-audit/.installed: requirements-audit.txt
	$(PYTHON) -m venv .venv-audit
	.venv-audit/bin/pip install -q -r requirements-audit.txt
	touch $@

env: $(STAMP)

# The environment is rebuilt whenever the lock file or the package metadata change.
$(STAMP): requirements.lock pyproject.toml scripts/bootstrap.sh
	PYTHON=$(PYTHON) VENV=$(VENV) UV_VERSION=$(UV_VERSION) bash scripts/bootstrap.sh
	touch $@

# samtools/bedtools/bcftools/freebayes: the tools users have and the tests compare against;
# chromium drives the Prefect UI test (tests/test_ui.py skips, saying why, without it);
# dockerd + a static busybox let tests/test_containers.py run a stand-in DeepVariant image.
system-deps:
	@bash scripts/system-deps.sh samtools bedtools bcftools freebayes
	@bash scripts/system-deps.sh chromium || echo "chromium unavailable: tests/test_ui.py will be skipped"
	@bash scripts/system-deps.sh docker.io busybox-static || echo "no docker engine: the container integration test will be skipped"

lock:
	$(BIN)/uv pip compile requirements.in --universal --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile requirements-audit.in --python-version 3.11 -o requirements-audit.txt

bench: env system-deps
	$(BIN)/python benchmarks/bench_coverage.py

clean:
	rm -rf demo-output demo-data .prefect .venv-audit
