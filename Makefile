# Two commands for a new user: `make run` (the pipeline on the embedded default) and `make test`.
# Both do the setup they need; setup is incremental (stamps), so a second run installs nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
JARS := jars/lib
PROFILE ?= local
PYTEST_ARGS ?=

CHROMIUM ?= /usr/bin/chromium

.PHONY: setup jars browser postgres run test test-fast bench lint format dist submit mlflow-ui notebooks clean

setup: $(VENV)/.installed $(JARS)/.fetched

$(VENV)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "make: Java 17 is needed (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

jars: $(JARS)/.fetched
$(JARS)/.fetched: jars/pom.xml jars/fetch.sh $(VENV)/.installed
	@command -v mvn >/dev/null || { echo "make: Maven is needed to fetch the Delta jars (apt-get install maven)"; exit 1; }
	bash jars/fetch.sh $(JARS) $(PY)
	@touch $@

# The report test opens the report in Debian's Chromium (headless); installed here when missing.
browser: $(CHROMIUM)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing Debian's chromium for the report test"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	else echo "make: the report test needs Chromium: sudo apt-get install chromium (or CHROMIUM=/path)"; exit 1; fi

# The tracking tests start Debian's PostgreSQL server (tests/servers.py); installed here when missing.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make: installing Debian's postgresql for the tracking tests"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; \
	  else echo "make: the tracking tests need PostgreSQL: sudo apt-get install postgresql"; exit 1; fi; \
	fi

run: setup
	$(BIN)/mobility --profile $(PROFILE) pipeline

test: setup $(CHROMIUM) postgres
	MOBILITY_CHROMIUM=$(CHROMIUM) $(BIN)/pytest --durations=15 $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

# The benchmark harness (bench/README.md): make bench SCALE=S|M|L [SET="spark.shuffle_partitions=16"]
# [STEPS=ingest] (the pipeline up to that step only: a partial result, whose end-to-end targets are not judged)
SCALE ?= S
bench: setup
	$(PY) -m bench.run --scale $(SCALE) $(foreach s,$(SET),--set $(s)) $(if $(STEPS),--steps $(STEPS))

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# What a cluster needs: the wheel (for --py-files or pip on the nodes) and the jar list. The jobs read
# their settings from conf/ beside jobs/ on the machine that submits.
dist: setup
	rm -rf dist build && mkdir -p dist
	$(PY) -m build --wheel --no-isolation --outdir dist . >/dev/null
	cd dist && cp mobility-*.whl mobility.zip
	ls $(CURDIR)/$(JARS)/*.jar | paste -sd, > dist/jars.txt
	@echo "dist/: $$(ls dist | paste -sd' ')"

# Any step on a Spark cluster: make submit STEP=reference MASTER=spark://host:7077 [SET="lake.root=/shared/lake"]
# [ARGS="--input /shared/in"] (the step's own options) [RESOURCES="--executor-memory 4g --total-executor-cores 8"]
STEP ?= pipeline
MASTER ?= spark://127.0.0.1:7077
RESOURCES ?= --driver-memory 2g --executor-memory 2g
ARGS ?=
SET ?=
submit: dist
	PYSPARK_PYTHON=$(CURDIR)/$(PY) PYSPARK_DRIVER_PYTHON=$(CURDIR)/$(PY) $(BIN)/spark-submit \
	  --master $(MASTER) $(RESOURCES) --jars $$(cat dist/jars.txt) --py-files dist/mobility.zip \
	  jobs/$(STEP).py --profile cluster $(foreach s,$(SET),--set $(s)) $(ARGS)

# Jupyter for the analyst notebooks (notebooks/): JupyterLab installed into the venv on first use.
notebooks: setup
	$(PY) -m pip install -q -e '.[notebooks]'
	$(BIN)/jupyter lab --notebook-dir notebooks

mlflow-ui: setup
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/mlflow ui --backend-store-uri "$$($(BIN)/mobility settings mlflow.tracking_uri)" --default-artifact-root "$$($(BIN)/mobility settings mlflow.artifact_root)" --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV) $(JARS) dist build lake reports mlflow.db mlartifacts mlruns spark-warehouse *.egg-info .pytest_cache .ruff_cache
