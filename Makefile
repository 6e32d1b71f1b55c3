# `make demo` and `make test` create .venv at the repository root when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: demo demo-diagnose test lint bench clean chromium

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch that lies on this machine's disk, first, so no multi-GB CUDA build is pulled.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The bundled search: an MLP on sklearn's digits (examples/search.yaml). Running it again resumes the
# same study and adds trials; `rm demo.db` starts over.
demo: $(STAMP)
	$(VENV)/bin/tunekit search examples/search.yaml --n-trials 12 --storage sqlite:///demo.db --study-name demo
	$(VENV)/bin/tunekit report --storage sqlite:///demo.db --study-name demo -o demo_report.html
	@echo
	@echo "next: open demo_report.html in a browser (e.g. python -m webbrowser demo_report.html);"
	@echo "      the best recipe as YAML: .venv/bin/tunekit best --storage sqlite:///demo.db --study-name demo"
	@echo "      your own model: copy examples/search.yaml, point model.class_path and data.class_path at your"
	@echo "      LightningModule and DataModule, and run .venv/bin/tunekit search your.yaml --n-trials 30"

demo-diagnose: $(STAMP)
	$(PY) examples/diagnose_runs.py

# The report tests render the HTML in Debian's headless Chromium: installed here when missing and this is root
# with apt-get (CI); elsewhere those tests skip with the reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "note: no chromium here; the report rendering tests will skip"

test: $(STAMP) chromium
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check tunekit tests benchmarks examples
	$(VENV)/bin/mypy tunekit
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
