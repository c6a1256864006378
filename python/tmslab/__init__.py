"""tmslab: tms from Python.

Train toy models of superposition with the compiled `tms` (C, CPU or CUDA) and analyse
them as labelled arrays:

    import tmslab
    run = tmslab.load("runs/pentagon")          # an xarray Dataset over the grid, plus tables
    run.sel(density=0.05).W                     # (importance, lr, weight_decay, seed, replicate, hidden, feature)
    run.loss.min("replicate")                   # the best replicate's final loss at every grid point

See the README's "Python" section for the API.
"""
from __future__ import annotations

from . import geometry
from .run import GRID_DIMS, NotARunError, Run, RunError, RunIncompleteError, grid_coords, load, load_snapshots

__version__ = "0.1.0"

__all__ = [
    "GRID_DIMS",
    "NotARunError",
    "Run",
    "RunError",
    "RunIncompleteError",
    "geometry",
    "grid_coords",
    "load",
    "load_snapshots",
]
