# Two commands for a new user: `make` (install what is missing, build the default PDFs) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed
SEED ?= 1
PRESETS ?= matrix-core forward-steps example1 example2 example3 example4 example5 example6 tiny-transformer backward-steps training-step book fundamentals backward-blocks optimizer-race
# Debian packages that give pdflatex, latexmk and the LaTeX packages the templates use; LuaLaTeX (luaotfload),
# fontconfig and the Noto fonts set a class's names in other scripts (docs/class-sets.md).
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern latexmk poppler-utils \
  texlive-luatex fontconfig fonts-noto-core fonts-noto-cjk
TEX_FILES := latexmk pdflatex pdftotext pdfinfo pdftoppm luahbtex fc-list
STY_FILES := lmodern.sty geometry.sty amsmath.sty xcolor.sty luaotfload.sty
FONT_FILES := /usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf /usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc
SOURCES := pyproject.toml $(shell find generator -name '*.py' -o -name '*.j2' 2>/dev/null)
SHEETS := $(PRESETS:%=worksheets/%.pdf) $(PRESETS:%=answer_keys/%-key.pdf)

.DELETE_ON_ERROR:
# A class set: the assignment file and the roster (CSV) for `make class`.
ASSIGNMENT ?= examples/assignment.toml
ROSTER ?= examples/roster.csv

.PHONY: all python tex web-assets test-services test bench bench-class bench-marking bench-web class serve clean
# Generated .tex/.json are worth keeping between runs (make would delete them as intermediates).
.SECONDARY:

all: $(SHEETS)

python: $(STAMP)

# The local virtual environment with the package installed in editable mode (runtime deps only).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed; $(PYTHON) is $$($(PYTHON) --version 2>&1)"; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || $(call apt_install,python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

# The test tools, PyTorch (CPU build) among them as the independent oracle for gradients.
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# pdflatex, latexmk, the LaTeX packages, LuaLaTeX and the fonts: installed from Debian's packages when missing.
tex:
	@missing=""; \
	for tool in $(TEX_FILES); do command -v $$tool >/dev/null || missing=1; done; \
	for sty in $(STY_FILES); do [ -n "$$(kpsewhich $$sty 2>/dev/null)" ] || missing=1; done; \
	for font in $(FONT_FILES); do [ -f $$font ] || missing=1; done; \
	if [ -n "$$missing" ]; then $(call apt_install,$(TEX_PACKAGES)); fi

# Installs Debian packages as root, or says the exact command to run.
define apt_install
if [ "$$(id -u)" = 0 ]; then \
  echo "Installing $(1) from Debian's packages"; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1) >/dev/null; \
else \
  echo "Missing Debian packages; run:  sudo apt-get install -y --no-install-recommends $(1)"; exit 1; \
fi
endef

# The web page's math renderer (KaTeX, served by the app itself: no CDN) from Debian's packages.
KATEX_FILE := /usr/share/javascript/katex/katex.min.js
web-assets:
	@[ -f $(KATEX_FILE) ] || $(call apt_install,libjs-katex)

# What the web tests start themselves: Debian's chromium (driven by playwright, never a downloaded browser) and a
# throwaway PostgreSQL server (initdb, pg_ctl).
test-services:
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then $(call apt_install,$$missing); fi

# One generator run writes the sheet, the key and the JSON key together.
worksheets/%.tex answer_keys/%-key.tex answer_keys/%-key.json: $(STAMP) $(SOURCES)
	$(PY) -m generator sheet --preset $* --seed $(SEED) --name $*

%.pdf: %.tex | tex $(STAMP)
	$(PY) -m generator pdf $<

# The tests in as many processes as the machine has cores (pytest-xdist; TEST_WORKERS=0 runs them in this one).
# loadgroup: the tests of one problem type share its drawn problems in one process (tests/draws.py).
TEST_WORKERS ?= auto
test: $(TEST_STAMP) tex web-assets test-services
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

bench: $(STAMP) tex web-assets
	$(PY) -m generator.bench

# Only the class-set figures (300 students, the example assignment).
bench-class: $(STAMP) tex
	$(PY) -m generator.bench class

# Only the marking figures (300 students, about 60 blanks each, with follow-through).
bench-marking: $(STAMP)
	$(PY) -m generator.bench marking

# Only the web page's figures: the real server on loopback, 300 students saving about 60 answers each, then Check.
# BENCH_WEB_PROFILE=1 also prints where the server's CPU time went (cProfile in every thread).
bench-web: $(STAMP) web-assets
	$(PY) -m generator.bench web

# Every student of ROSTER gets their own variant of ASSIGNMENT, in classes/<assignment name>/ (unchanged files are kept).
class: $(STAMP) tex
	$(PY) -m generator class $(ASSIGNMENT) $(ROSTER) --pdf

# Students type their answers on a web page: CLASS is a class folder (make class writes classes/<name>).
CLASS ?= classes/week3
serve: $(STAMP) web-assets
	$(PY) -m generator serve $(CLASS)

clean:
	rm -rf build classes worksheets/*.tex worksheets/*.pdf answer_keys/*.tex answer_keys/*.pdf answer_keys/*.json
