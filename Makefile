# Two entry points, each self-sufficient on a fresh clone:
#   make test  - set up .venv if needed, run the fast tests, run the smoke study, build the book with
#                -W (warnings fail), then check the built book in headless Chromium
#   make book  - set up .venv if needed, run the study at the smoke profile, then build the book
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ichseg-installed
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg

JB_FLAGS := -W -n --keep-going
# the profile `make book` runs; any other profile's committed results/ are rendered beside it
STUDY_PROFILE ?= smoke

.PHONY: test book book-html study gpu-check browser chromium venv clean

venv: $(STAMP)

# Re-installs when the dependency list changes; pip takes torch/torchvision from local disk here.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

test: $(STAMP) chromium
	$(BIN)/python -m pytest -m "not browser and not study"
	$(MAKE) book
	ICHSEG_REQUIRE_BOOK=1 $(BIN)/python -m pytest -s -m "browser or study" tests/test_study_outcome.py tests/test_book_browser.py

book: $(STAMP)
	$(MAKE) study
	$(MAKE) book-html

# papermill runs of every stage whose stamp changed; prints and writes a timing table
study: $(STAMP)
	$(BIN)/ichseg study --profile $(STUDY_PROFILE) $(if $(STUDY_JOBS),--jobs $(STUDY_JOBS))

# the toc gets one results section per consistent profile under results/ (stale ones are left out);
# --all: prose pages paste glued numbers from the results notebooks, and an incremental Sphinx
# build would not re-render them when only a notebook changed
book-html: $(STAMP)
	$(BIN)/ichseg report toc --require $(STUDY_PROFILE)
	$(BIN)/jupyter-book build book --config _config.yml --toc $(abspath book/_toc.generated.yml) --path-output . --all $(JB_FLAGS)
	@echo "Book: $(abspath _build/html/index.html)"

# on a CUDA machine, ≤ 8 minutes: throughput, bf16 MFU and ensemble seconds per slice -> bench/out/
gpu-check: $(STAMP)
	PYTHON=$(BIN)/python bash bench/gpu_check.sh

browser: $(STAMP) chromium
	ICHSEG_REQUIRE_BOOK=1 $(BIN)/python -m pytest -m browser tests/test_book_browser.py

# Debian's chromium + chromedriver for the browser test (CI machines are fresh; installs as root)
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "install chromium and chromium-driver (apt-get, as root) for the browser test" >&2; exit 1; fi

clean:
	rm -rf _build .pytest_cache book/_toc.generated.yml book/generated
