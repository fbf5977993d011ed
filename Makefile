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

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the CPU build; later requirements accept it and pull no CUDA build
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

DEMO_CHANNELS := V1:Hrec_hoft_4096Hz V1:SBE_SDB1_DISP_X V1:SBE_SDB1_LVDT_X V1:ENV_CEB_MAG_N \
                 V1:ENV_CEB_UPS_VOLT_R V1:ASC_NE_TX_CORR

demo: install
	$(BIN)/gwtwin simulate --output $(DEMO_DIR)/simulation --quicklook $(DEMO_DIR)/quicklook.png
	$(BIN)/gwtwin triggers $(DEMO_DIR)/simulation --output $(DEMO_DIR)/triggers.h5 \
		--channels $(DEMO_CHANNELS)
	@echo "demo outputs: $(DEMO_DIR)/simulation (frames, truth, catalogue), $(DEMO_DIR)/quicklook.png, $(DEMO_DIR)/triggers.h5"

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_frames.py
	$(BIN)/python benchmarks/bench_psd.py
	$(BIN)/python benchmarks/bench_qtransform.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
