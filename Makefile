# The README's quick start: `make demo` and `make test`. Both set up .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEX := indexes/quickstart
QUESTION ?= What are the symptoms of high blood pressure?
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test setup clean-index

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The index is rebuilt only when the recipe changes; an interrupted ingest resumes where it stopped.
$(INDEX)/.complete: corpora/quickstart.toml $(STAMP)
	$(BIN)/medrag ingest corpora/quickstart.toml --index $(INDEX)
	touch $@

demo: $(INDEX)/.complete
	$(BIN)/medrag ask "$(QUESTION)" --index $(INDEX)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-index:
	rm -rf $(INDEX)
