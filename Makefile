# Two entry points, each self-sufficient on a fresh clone:
#   make test  - set up .venv if needed, run the test suite, then build the book with -W (warnings fail)
#   make book  - set up .venv if needed, run the study at the smoke profile, then build the book
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ichseg-installed
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg

JB_FLAGS := -W -n --keep-going

.PHONY: test book book-html venv clean

venv: $(STAMP)

# Re-installs when the dependency list changes; pip takes torch/torchvision from local disk here.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) book-html

book: $(STAMP)
	$(MAKE) book-html

book-html: $(STAMP)
	$(BIN)/jupyter-book build book --config _config.yml --path-output . $(JB_FLAGS)
	@echo "Book: $(abspath _build/html/index.html)"

clean:
	rm -rf _build .pytest_cache
