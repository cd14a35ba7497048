# Two entry points, each self-sufficient on a fresh clone:
#   make test  - set up .venv if needed, run the fast tests, run the smoke study, build the book with
#                -W (warnings fail), then check the built book in headless Chromium
#   make book  - set up .venv if needed, run the study at the smoke profile, then build the book
# and, for maintainers:
#   make lock     - re-resolve pyproject.toml's ranges into requirements/lock.txt (exact versions with
#                   hashes, all extras) and rewrite environment.yml; commit both
#   make book-committed - build the book from the results committed under results/ (no study run)
#   make publish  - put the built book (_build/html) on the local gh-pages branch (ghp-import); pushing
#                   it (git push origin gh-pages) is the owner's step
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ichseg-installed
# exact versions with hashes of every dependency and extra, resolved for CPython 3.11 on Linux x86_64
LOCK   := requirements/lock.txt
EXTRAS := book nnunet realct dev
# uv resolves it (from PyPI's index, with the hashes the index publishes; pip-tools would download
# every wheel of every platform to hash it). It lives in its own venv: regenerating the lock must not
# depend on the lock. The lock's versions stay unless LOCK_FLAGS=--upgrade (or --upgrade-package NAME).
LOCK_TOOLS := $(VENV)/lock-tools
UV         := uv==0.13.9
LOCK_FLAGS ?=
PIP := $(BIN)/python -m pip --disable-pip-version-check
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg

JB_FLAGS := -W -n --keep-going
# the profile `make book` runs; any other profile's committed results/ are rendered beside it
STUDY_PROFILE ?= smoke
# what `ichseg report toc` must find: this study's profile, or (book-committed) any committed one
TOC_REQUIRE ?= --require $(STUDY_PROFILE)

.PHONY: test book book-html book-committed study gpu-check browser chromium venv lock publish clean

venv: $(STAMP)

# Installs exactly the lock (every hash checked), then ichseg itself without resolving anything;
# re-installs when the lock or pyproject.toml changes. pip takes torch/torchvision from local disk here.
# --no-compile, then compileall on every core: pip byte-compiles the installed modules (torch's
# thousands) one at a time, about 36 s of a fresh clone's `make book`; compileall -j 0 does it in
# about 20 s on two cores. The .pyc files must exist: where PYTHONDONTWRITEBYTECODE is set, Python
# would otherwise compile every imported module again in every notebook kernel. compileall's status
# is ignored, as pip ignores it: some wheels ship files that are not Python 3 (templates, fixtures).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --no-compile --require-hashes -r $(LOCK)
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@

lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet '$(UV)'; }
	$(LOCK_TOOLS)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command 'make lock' $(addprefix --extra ,$(EXTRAS)) $(LOCK_FLAGS) --output-file $(LOCK) pyproject.toml
	$(LOCK_TOOLS)/bin/python requirements/environment.py --extras $(EXTRAS) --out environment.yml

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
	$(BIN)/ichseg report toc $(TOC_REQUIRE)
	$(BIN)/jupyter-book build book --config _config.yml --toc $(abspath book/_toc.generated.yml) --path-output . --all $(JB_FLAGS)
	@echo "Book: $(abspath _build/html/index.html)"

# the publishing build (CI's book workflow): no study run, at least one committed profile rendered.
# Without -W: the prose pages glue numbers from this build's smoke run (results/smoke is not
# committed), and those references are left empty with a warning instead of failing the build.
book-committed: $(STAMP)
	$(MAKE) book-html TOC_REQUIRE=--require-any JB_FLAGS="-n --keep-going"

# the conventional Jupyter Book 1 path: the built HTML becomes the only commit of the local
# gh-pages branch (-n: .nojekyll, so GitHub Pages serves _static/ as is)
publish: $(STAMP)
	test -f _build/html/index.html || { echo "no book in _build/html: run make book (or make book-committed) first" >&2; exit 1; }
	$(BIN)/ghp-import -n -m "Book built from $$(git rev-parse --short HEAD)" _build/html
	@echo "gh-pages updated locally; publish with: git push origin gh-pages"

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
