VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test model lint clean

# The virtual environment is rebuilt whenever a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/uvicorn adapters.asgi:app --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest -q

model: install
	$(PY) -m core.train --data ../shared/data/titanic.csv --target Survived --drop PassengerId,Name,Ticket --out artifacts/titanic

clean:
	rm -rf $(VENV) dist .pytest_cache
