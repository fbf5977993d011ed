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

STRAIN_TRIGGERS := $(DEMO_DIR)/scan/triggers/V1-Hrec_hoft_4096Hz.h5

# the pipeline so far on the built-in scenario (2048 s): simulate, select witnesses, build the
# training set (the last 308 s held out), train + register the model, write the report
demo: install
	$(BIN)/gwtwin simulate --output $(DEMO_DIR)/simulation --quicklook $(DEMO_DIR)/quicklook.png
	$(BIN)/gwtwin scan $(DEMO_DIR)/simulation --output $(DEMO_DIR)/scan
	$(BIN)/gwtwin dataset $(DEMO_DIR)/simulation --selected $(DEMO_DIR)/scan/selected_channels.json \
		--triggers $(STRAIN_TRIGGERS) --config configs/demo-dataset.yaml --output $(DEMO_DIR)/dataset.h5
	$(BIN)/gwtwin train $(DEMO_DIR)/dataset.h5 --workdir $(DEMO_DIR)/train
	$(BIN)/gwtwin report $(DEMO_DIR)
	@echo "demo outputs in $(DEMO_DIR): simulation/, scan/, dataset.h5, train/ (MLflow + TensorBoard), report/index.html"

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# the tests that fit the ~15 min budget on 2 cores; test-slow runs the multi-seed acceptance runs
test: install lint
	$(BIN)/python -m pytest -m "not slow"

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

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
