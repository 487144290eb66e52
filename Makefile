# The README's quick start: `make demo` and `make test`. Both set up .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEX := indexes/quickstart
QUESTION ?= What are the symptoms of high blood pressure?
export HF_HUB_OFFLINE ?= 1

EVAL := ../shared/data/eval
.PHONY: demo test setup clean-index adapt

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

# The domain-adapted embedder of eval/reports/retrieval.md (BioASQ 7B-8B + PubMedQA dev pairs, 2 epochs, one BM25
# hard negative per pair; ~55 min on 2 cores, 34 s on a GPU, which it uses when torch sees one).
adapt: $(STAMP)
	$(BIN)/medrag train-embedder --data $(wildcard $(EVAL)/bioasq/7B*_golden.json $(EVAL)/bioasq/8B*_golden.json) \
		$(EVAL)/pubmedqa_dev.json --out indexes/models/minilm-bioasq --epochs 2 --hard-negatives 1

clean-index:
	rm -rf $(INDEX)
