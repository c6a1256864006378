"""Geometry of a trained W, computed in numpy exactly as tms computes it (host/geometry.c).

W is (..., m, n): any leading axes (instances, or a run's grid), then hidden x feature,
the layout of W.npy. Column W_i is feature i's direction in the hidden space.

- norm ||W_i||
- superposition sum_{j != i} (W^_i . W_j)^2, W^_i = W_i / ||W_i|| (0 when W_i = 0): how
  much of the other features lies along feature i
- dimensionality D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 (0 when W_i = 0): the fraction of
  a dimension feature i gets (the paper's feature dimensionality)
- D* = m / ||W||_F^2 (0 when W = 0): dimensions per feature
- represented: ||W_i|| > 0.5 (instances.csv's n_represented counts them)
- phase: what a model does with a feature, the paper's phase diagrams: "not represented"
  (||W_i|| <= 0.5), "dedicated" (represented, superposition < 0.25: a direction of its
  own), "superposition" (represented, sharing its direction)

NaN in W (an absent shard instance) gives NaN, never an error.
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

REPRESENTED_NORM = 0.5  # host/run.c: a feature is represented when ||W_i|| > 0.5
SUPERPOSITION_SHARED = 0.25  # phase: a represented feature with this much interference shares its direction
PHASES: tuple[str, ...] = ("not represented", "dedicated", "superposition")


def gram(W: ArrayLike) -> np.ndarray:
    """W^T W (..., n, n) in float64."""
    W = np.asarray(W, dtype=np.float64)
    return np.swapaxes(W, -1, -2) @ W


def feature_geometry(W: ArrayLike) -> dict[str, np.ndarray]:
    """{"norm", "superposition", "dimensionality"}: each (..., n), float64."""
    G = gram(W)
    sq = np.diagonal(G, axis1=-2, axis2=-1)  # ||W_i||^2
    norm = np.sqrt(sq)
    n = G.shape[-1]
    off = np.where(np.eye(n, dtype=bool), 0.0, G)  # W_i . W_j for j != i
    with np.errstate(divide="ignore", invalid="ignore"):
        # sum over j != i of (W^_i . W_j)^2 = sum (W_i . W_j)^2 / ||W_i||^2, summed directly
        # (not as a difference of totals) so a tiny interference keeps its digits
        interference = (off * off).sum(axis=-1) / sq
        sup = np.where(sq > 0, interference, 0.0)
        dim = np.where(sq > 0, sq / (sq + sup), 0.0)
    nan = np.isnan(sq)
    sup = np.where(nan, np.nan, sup)
    dim = np.where(nan, np.nan, dim)
    return {"norm": norm, "superposition": sup, "dimensionality": dim}


def dims_per_feature(W: ArrayLike) -> np.ndarray:
    """D* = m / ||W||_F^2 (...,), 0 for W = 0."""
    W = np.asarray(W, dtype=np.float64)
    fro = (W * W).sum(axis=(-2, -1))
    m = W.shape[-2]
    with np.errstate(divide="ignore"):
        return np.where(fro > 0, m / fro, np.where(np.isnan(fro), np.nan, 0.0))


def represented(W: ArrayLike) -> np.ndarray:
    """(..., n) bool: ||W_i|| > 0.5."""
    return feature_geometry(W)["norm"] > REPRESENTED_NORM


def n_represented(W: ArrayLike) -> np.ndarray:
    """(...,) float: how many features are represented (NaN where W is NaN)."""
    norm = feature_geometry(W)["norm"]
    count = (norm > REPRESENTED_NORM).sum(axis=-1).astype(np.float64)
    return np.where(np.isnan(norm).any(axis=-1), np.nan, count)


def phase(norm: ArrayLike | xr.DataArray, superposition: ArrayLike | xr.DataArray) -> np.ndarray | xr.DataArray:
    """The phase of each feature (PHASES): "not represented" where norm <= 0.5,
    "superposition" where represented and superposition >= 0.25, else "dedicated"; "" where
    norm is NaN (an absent shard instance). Keeps a DataArray's dimensions and coordinates."""
    if isinstance(norm, xr.DataArray) or isinstance(superposition, xr.DataArray):
        norm_a, sup_a = xr.DataArray(norm), xr.DataArray(superposition)
        label = xr.where(norm_a > REPRESENTED_NORM,
                         xr.where(sup_a >= SUPERPOSITION_SHARED, PHASES[2], PHASES[1]), PHASES[0])
        return xr.where(norm_a.isnull(), "", label).rename("phase")
    n, s = np.asarray(norm, dtype=np.float64), np.asarray(superposition, dtype=np.float64)
    label = np.where(n > REPRESENTED_NORM, np.where(s >= SUPERPOSITION_SHARED, PHASES[2], PHASES[1]), PHASES[0])
    return np.where(np.isnan(n), "", label)
