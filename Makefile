VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test model lint bench lambda-package clean soak

# Serving needs requirements.txt only; the test and lint tooling (requirements-dev.txt) comes on
# top of it, for make test. Each stamp is redone when its requirements file changes.
$(VENV)/.serve-installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed: $(VENV)/.serve-installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

serve: $(VENV)/.serve-installed
	$(PY) -m adapters.serve --host $(HOST) --port $(PORT) --no-access-log

test: install
	$(PY) -m pytest -q

model: install
	$(PY) -m core.build.train --data ../shared/data/titanic.csv --target Survived --drop PassengerId,Name,Ticket --out artifacts/titanic

lint: install
	$(PY) -m ruff check core adapters tests bench scripts handler.py
	$(PY) -m mypy core adapters

# Benchmarks need a baseline server (Flask + gunicorn) that the service itself does not.
$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

# wrk is the HTTP load generator (Debian package); installed when missing and apt-get is there.
bench: $(VENV)/.bench-installed
	command -v wrk >/dev/null || apt-get install -y --no-install-recommends wrk
	$(PY) -m bench.core_bench
	$(PY) -m bench.forms_bench
	$(PY) -m bench.cold_start
	$(PY) -m bench.package_size
	$(PY) -m bench.http_bench
	$(PY) -m bench.postgres_bench
	$(PY) -m bench.challenger_bench
	$(PY) -m bench.stats_bench
	$(PY) -m bench.score_bench

# The long versions of the reliability checks (docs/reliability.md): more clients, requests, kills and fuzzing.
soak: install
	SOAK=1 $(PY) -m pytest -q -m slow tests/reliability

# make lambda-package MODEL_DIR=path/to/artifact packages that model (default: the shipped one);
# LAMBDA_POSTGRES=1 adds psycopg, for a function whose STORE_URL is postgresql://.
MODEL_DIR ?= artifacts/titanic
LAMBDA_ZIP ?= dist/lambda.zip
lambda-package: install
	$(PY) scripts/build_lambda_package.py --model-dir $(MODEL_DIR) --out $(LAMBDA_ZIP) $(if $(LAMBDA_POSTGRES),--with-postgres)

clean:
	rm -rf $(VENV) dist .pytest_cache
