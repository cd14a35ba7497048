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
LOCK_FLAGS ?=
PIP := $(BIN)/python -m pip --disable-pip-version-check
# the installer itself, pinned with every hash of its release (`make lock` writes it)
BOOTSTRAP := requirements/bootstrap.txt
UV_VERSION := 0.13.9
UV_CACHE_DIR ?= $(HOME)/.cache/uv
export UV_CACHE_DIR
# uv reads no pip configuration: hand it the package sources pip is configured with on this machine
# (extra indexes and find-links holding local copies of PyPI files); with none, uv uses PyPI alone.
# Every file is still checked against the lock's hashes, whichever source serves it.
PIP_SOURCES = $(foreach u,$(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null),--extra-index-url $(u)) \
              $(foreach u,$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null),--find-links $(u))
INSTALL_SOURCES ?= $(PIP_SOURCES)
# what is installed after the lock, resolving nothing (tests of the install step set it empty)
PROJECT_INSTALL ?= -e .
export PATH := $(abspath $(BIN)):$(PATH)
# Python writes each module's byte code the first time it is imported, into one cache inside the venv
# (not beside the sources): compiling all of torch up front cost ~30 s of every fresh set-up, and where
# PYTHONDONTWRITEBYTECODE is set every notebook kernel would compile every import again.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache
export MPLBACKEND := Agg

JB_FLAGS := -W -n --keep-going
# Sphinx processes reading and writing the book's pages (each prose page runs a short notebook at
# build time): one per core, up to 4
BOOK_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
# the profile `make book` runs; any other profile's committed results/ are rendered beside it
STUDY_PROFILE ?= smoke
# what `ichseg report toc` must find: this study's profile, or (book-committed) any committed one
TOC_REQUIRE ?= --require $(STUDY_PROFILE)

.PHONY: test book book-html book-committed study gpu-check browser chromium invesalius venv lock publish clean

venv: $(STAMP)

# Installs exactly the lock and resolves nothing, so no upstream release can change or break it:
# - pip only bootstraps the installer: one exact pin, every hash of its release, --no-deps.
# - `uv pip sync --require-hashes` installs the lock's files as they are (no resolver: pip in
#   --require-hashes mode still resolves each package's dependencies and extras, and refuses the
#   lock as soon as a newer release of one of them is published), removes anything not in it, and
#   unpacks in parallel (~30 s for the whole lock on 2 cores, where pip took ~85 s).
# - --index-strategy unsafe-best-match: a file may come from any configured source; the hashes, not
#   the source, decide what is accepted, which is what the "unsafe" guards against.
# Re-installs when the lock, the bootstrap pin or pyproject.toml changes.
$(STAMP): pyproject.toml $(LOCK) $(BOOTSTRAP)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/uv --version 2>/dev/null | grep -qE '^uv $(subst .,\.,$(UV_VERSION))( |$$)' || \
	  $(PIP) install --quiet --no-deps --require-hashes --no-compile -r $(BOOTSTRAP)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes --index-strategy unsafe-best-match \
	  $(INSTALL_SOURCES) $(LOCK)
	$(if $(strip $(PROJECT_INSTALL)),$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation $(PROJECT_INSTALL))
	touch $@

lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && \
	  $(LOCK_TOOLS)/bin/pip install --quiet --no-deps --require-hashes -r $(BOOTSTRAP); }
	echo 'uv==$(UV_VERSION)' | $(LOCK_TOOLS)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command 'make lock' --output-file $(BOOTSTRAP) -
	$(LOCK_TOOLS)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command 'make lock' $(addprefix --extra ,$(EXTRAS)) $(LOCK_FLAGS) --output-file $(LOCK) pyproject.toml
	$(LOCK_TOOLS)/bin/python requirements/environment.py --extras $(EXTRAS) --out environment.yml

test: $(STAMP) chromium invesalius
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
	$(BIN)/python -m ichseg.report.book_build --jobs $(BOOK_JOBS) build book --config _config.yml --toc $(abspath book/_toc.generated.yml) --path-output . --all $(JB_FLAGS)
	@echo "Book: $(abspath _build/html/index.html)"

# the publishing build (CI's book workflow): no study run, at least one committed profile rendered.
# Without -W: the prose pages glue numbers from this build's smoke run (only results/smoke/NOTES.md
# is committed), and those references are left empty with a warning instead of failing the build.
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

# Debian's invesalius-examples: its Cranium.inv3 is the real whole-head CT test volume (read at run time)
invesalius:
	@if [ -f /usr/share/doc/invesalius-examples/examples/Cranium.inv3 ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq invesalius-examples >/dev/null; \
	else echo "install invesalius-examples (apt-get, as root) for the real whole-head CT test volume" >&2; exit 1; fi

clean:
	rm -rf _build .pytest_cache book/_toc.generated.yml book/generated
