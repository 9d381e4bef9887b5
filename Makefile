# Cutover: developer tasks. `make run` starts everything; `make test` runs the tests.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -q -n auto

.PHONY: install run test bench clean distclean

install: $(STAMP)

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when requirements.txt or pyproject.toml is newer than the stamp. The pinned
# requirements first, then the project itself, editable (no dependencies: they are all pinned above),
# which gives .venv/bin/cutover.
$(STAMP): requirements.txt pyproject.toml | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -r requirements.txt
	$(VENV_PYTHON) -m pip install --no-deps -e .
	touch $(STAMP)

# exec, so that Ctrl-C and SIGTERM reach the runner itself.
run: $(STAMP)
	exec $(VENV_PYTHON) -m webapp.allinone

test: $(STAMP)
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

# Each bench/*.py script in turn (helpers named _*.py and __init__.py are skipped), then one table of every
# figure they recorded (bench/_summary.py). A script that fails is reported in the table; the others still run.
bench: $(STAMP)
	@results=$$(mktemp); status=$$(mktemp); \
	for script in bench/*.py; do \
		[ -e "$$script" ] || { echo "no bench/*.py scripts"; exit 0; }; \
		case "$${script##*/}" in _*) continue ;; esac; \
		echo "== $$script"; started=$$(date +%s); \
		BENCH_RESULTS=$$results $(VENV_PYTHON) "$$script" || echo "$$script $$?" >> $$status; \
		echo "== $$script took $$(( $$(date +%s) - started )) s"; \
	done; \
	$(VENV_PYTHON) bench/_summary.py $$results $$status; rm -f $$results $$status

# Caches only; never var/ (user data).
clean:
	find . \( -path ./$(VENV) -o -path ./var \) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache

distclean: clean
	rm -rf $(VENV)
