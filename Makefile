# Two commands do all the set-up on a fresh machine:
#   make demo   the main job on embedded brokers (also: make run)
#   make test   lint, then the whole test suite (tiers: pytest -m unit|pipeline|integration|browser)
#   make bench  the benchmarks' quick profile: one markdown table of every figure
#   make kafka  Apache Kafka's broker jars from Maven Central (Java and Maven with apt when
#               missing), for kafka.embedded: kafka and the tests on Kafka; make test runs it
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run demo lint test test-unit services kafka bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/yujing run --config config.yaml

demo: $(STAMP)
	$(BIN)/yujing demo --config config.yaml

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint services kafka $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

services:
	bash scripts/install-test-services

# into ~/.cache/yujing/kafka-<version> (or YUJING_KAFKA_HOME), reused by later runs
kafka:
	bash scripts/install-kafka

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# the benchmarks' quick profile (minutes): one markdown table of every figure, in
# .yujing/bench/report.md (logs beside it); Apache Kafka when `make kafka` installed it
bench: $(STAMP)
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .yujing *.egg-info
