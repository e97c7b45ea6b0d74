# Every target sets up .venv on first use (torch==2.13.0 CPU first, then this package) and
# reuses it afterwards: the install re-runs only when setup.cfg or pyproject.toml change.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0

.PHONY: install train test learning bench lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

## The main job: MP-DQN on Platform (the reference's settings with Gaussian parameter noise,
## 8 envs, 30k env steps) on an embedded local Ray, ending with the best checkpoint's greedy
## evaluation over 1000 fresh episodes and a GIF of one greedy episode.
train: $(STAMP)
	$(BIN)/rllib-ext train configs/pdqn/platform.yaml --gif tune_runs/mpdqn_platform.gif

## The fast test tier (what CI runs): two pytest workers, one test file at a time each (most of
## a test's time is Ray starting processes, so two overlap well on 2 cores; each worker has its
## own local Ray).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## The slow tier: every config's pass criterion, as a table (not part of CI).
learning: $(STAMP)
	$(BIN)/rllib-ext check configs

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check rllib_ext tests benchmarks

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
