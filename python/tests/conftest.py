"""Shared fixtures: the tms binary (TMS_BIN, as CTest's `python` test sets it, else
tmslab.find_tms: PATH, then the repository's build/tms) and small runs trained once per
session into pytest's temporary directory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tmslab

# a small sweep over every grid axis but seed (the tied model with a bias): 3 densities x 2
# importance decays x 2 learning rates x 2 weight decays x 2 replicates = 48 instances
SWEEP: dict[str, Any] = {
    "name": "pytest-sweep",
    "model": {"n_features": 6, "n_hidden": 2},
    "data": {"density": [1, 0.1, 0.03], "importance_decay": [1, 0.8], "batch_size": 256},
    "optimizer": {"lr": [0.003, 0.01], "weight_decay": [0, 0.01]},
    "train": {"steps": 300, "seeds": 2, "log_every": 50, "eval_samples": 8192},
    "output": {"images": False, "contact_sheet": False},
}


@pytest.fixture(scope="session")
def tms() -> Path:
    return tmslab.find_tms()


@pytest.fixture(scope="session")
def sweep_dir(tms: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "run"
    tmslab.train(SWEEP, out=out, backend="cpu", progress=False, echo=False)
    return out


@pytest.fixture(scope="session")
def sweep(sweep_dir: Path) -> tmslab.Run:
    return tmslab.load(sweep_dir)


@pytest.fixture(scope="session")
def untied_dir(tms: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untied decoder with a hidden ReLU and its bias (W2 and b1 exist), two seeds."""
    out = tmp_path_factory.mktemp("untied") / "run"
    spec = {"model": {"n_features": 5, "n_hidden": 3, "decoder": "untied", "hidden_activation": "relu"},
            "data": {"density": [1, 0.05], "importance_decay": 0.9, "batch_size": 128},
            "train": {"steps": 200, "seed": [3, 7], "log_every": 40, "eval_samples": 8192},
            "output": {"images": False, "contact_sheet": False}}
    tmslab.train(spec, out=out, backend="cpu", progress=False, echo=False)
    return out
