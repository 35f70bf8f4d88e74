# Taming Gradients. Every target bootstraps .venv itself from pyproject.toml (the one list of pins).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8888
SUBMISSIONS ?= submitted
OUT ?= grades
ASSIGNMENT ?=
SOURCE ?=
WORKERS ?=
SCHEDULER ?=
export PATH := $(CURDIR)/$(BIN):$(PATH)
export JUPYTER_CONFIG_PATH := $(CURDIR)/autograder
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
# Jupyter refuses to run as root without this flag (containers, CI machines).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab instructor test release check-release grade gradebook bench lint setup hub

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; Taming Gradients needs Python 3.11 (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,cluster,hub]'
	$(BIN)/jupyter labextension list 2>&1 | grep -q nbgrader
	$(BIN)/jupyter labextension list 2>&1 | grep -q jupyterlab-manager
	touch $(STAMP)

## lab: set up and open JupyterLab on course/: the learner's view (Validate and widgets; no instructor tools)
lab: $(STAMP)
	JUPYTER_CONFIG_PATH=$(CURDIR)/autograder/learner:$(CURDIR)/autograder $(BIN)/jupyter lab --notebook-dir=course --ServerApp.port=$(PORT) $(ALLOW_ROOT)

## instructor: JupyterLab on the repository root, where nbgrader's formgrader can open solutions/
instructor: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=. --ServerApp.port=$(PORT) $(ALLOW_ROOT)

## test: set up and run the whole suite (browser tests included)
test: $(STAMP)
	bash tools/ensure_browser.sh
	$(BIN)/python -m pytest

## release: regenerate course/ from solutions/ (never edit course/*/*.ipynb by hand)
release: $(STAMP)
	$(BIN)/python -m autograder release

check-release: $(STAMP)
	$(BIN)/python -m autograder check-release

## grade: grade a class: make grade SUBMISSIONS=dir OUT=dir [ASSIGNMENT="NN_topic ..."] [SOURCE=dir (default: this checkout's solutions/)] [WORKERS=n] [SCHEDULER=tcp://host:8786 (a Dask cluster)]
grade: $(STAMP)
	$(BIN)/python -m autograder grade $(SUBMISSIONS) --out $(OUT) $(foreach a,$(ASSIGNMENT),--assignment $(a)) $(if $(SOURCE),--source $(SOURCE)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

## gradebook: (workshops) the results in OUT into nbgrader's gradebook and feedback folder of COURSE: make gradebook OUT=dir COURSE=dir
gradebook: $(STAMP)
	@test -n "$(COURSE)" || { echo "error: give COURSE=<the instructor's nbgrader course directory>"; exit 1; }
	$(BIN)/python -m autograder gradebook $(OUT) --course $(COURSE)

## hub: (root) a workshop JupyterHub on this machine: make hub [ROSTER=file] [HUB_PORT=8000] (docs/WORKSHOP.md)
ROSTER ?= workshop/roster.example.csv
HUB_PORT ?= 8000
hub:
	bash workshop/setup.sh $(ROSTER)
	bash workshop/start.sh $(HUB_PORT)

## bench: print the course's speed as ratios against peers run in the same process
bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
