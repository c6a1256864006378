"""tmslab: tms from Python.

Train toy models of superposition with the compiled `tms` (C, CPU or CUDA) and analyse
them as labelled arrays:

    import tmslab
    run = tmslab.load("runs/pentagon")          # an xarray Dataset over the grid, plus tables
    run.sel(density=0.05).W                     # (importance, lr, weight_decay, seed, replicate, hidden, feature)
    run.loss.min("replicate")                   # the best replicate's final loss at every grid point
    run = tmslab.train("experiments/pentagon.json", out="runs/p", steps=2000)   # train, then load

See the README's "Python" section for the API.
"""
from __future__ import annotations

from . import geometry
from .run import (GRID_DIMS, NotARunError, Run, RunError, RunIncompleteError, RunIntegrityError, RunStatus,
                  grid_coords, load, load_snapshots, status, verify)
from .training import TmsError, TmsNotFoundError, find_tms, train

__version__ = "0.1.0"

__all__ = [
    "GRID_DIMS",
    "NotARunError",
    "Run",
    "RunError",
    "RunIncompleteError",
    "RunIntegrityError",
    "RunStatus",
    "TmsError",
    "TmsNotFoundError",
    "find_tms",
    "geometry",
    "grid_coords",
    "load",
    "load_snapshots",
    "status",
    "train",
    "verify",
]
