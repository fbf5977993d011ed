# gwtwin — one-command install, demo, tests and benchmarks.
# TORCH_SPEC can be overridden, e.g. `make install TORCH_SPEC="torch==2.14.1"`.
PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
DEMO_DIR    ?= demo-run
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.gwtwin-installed

export MLFLOW_DISABLE_TELEMETRY := true
export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-slow lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the CPU build; later requirements accept it and pull no CUDA build
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# the whole pipeline on the built-in scenario (2048 s): simulate, select witnesses, build the
# training set (the last 308 s held out), train + register the model, clean every frame, score the
# cleaning on the held-out time against the truth, write the report (configs/demo.yaml)
demo: install
	$(BIN)/gwtwin run configs/demo.yaml --run-dir $(DEMO_DIR)
	@echo "report: $(abspath $(DEMO_DIR))/report/index.html (open it in a browser; no server needed)"

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

# the tests that fit the ~15 min budget on 2 cores; test-slow runs the multi-seed acceptance runs
# two processes, one per core; each test file stays in one process (its module fixtures once)
TEST_WORKERS ?= 2
test: install lint
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile

test-slow: install
	$(BIN)/python -m pytest -m slow

bench: install
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_frames.py
	$(BIN)/python benchmarks/bench_psd.py
	$(BIN)/python benchmarks/bench_qtransform.py
	$(BIN)/python benchmarks/bench_select.py
	$(BIN)/python benchmarks/bench_dataset.py
	$(BIN)/python benchmarks/bench_train.py
	test -f $(DEMO_DIR)/train/result.json || $(MAKE) demo
	$(BIN)/python benchmarks/bench_clean.py --run-dir $(DEMO_DIR)
	$(BIN)/python benchmarks/bench_heldout.py --run-dir $(DEMO_DIR)
	$(BIN)/python benchmarks/bench_watcher.py
	$(BIN)/python benchmarks/bench_stream.py --run-dir $(DEMO_DIR) --speed 2
	$(BIN)/python benchmarks/bench_stream_soak.py --run-dir $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
