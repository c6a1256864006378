"""tmslab.geometry from the weights agrees with what tms wrote in instances.csv and
features.csv (host/geometry.c, float32 in the CSVs): norm, superposition, dimensionality
D_i, D* and the represented count, for every instance of a sweep and of an untied run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tmslab
from tmslab import geometry


@pytest.mark.parametrize("which", ["sweep_dir", "untied_dir"])
def test_geometry_matches_csvs(which: str, request: pytest.FixtureRequest) -> None:
    run = tmslab.load(request.getfixturevalue(which))
    W = np.load(Path(run.path) / "W.npy")  # (I, m, n), independent of load's reshaping
    feats = run.features.sort_values(["instance", "feature"])
    geo = geometry.feature_geometry(W)
    for col in ("norm", "superposition", "dimensionality"):
        want = feats[col].to_numpy().reshape(W.shape[0], W.shape[2])
        np.testing.assert_allclose(geo[col], want, rtol=2e-5, atol=2e-6, err_msg=col)
    inst = run.instances.sort_values("instance")
    np.testing.assert_allclose(geometry.dims_per_feature(W), inst.dims_per_feature, rtol=2e-5)
    np.testing.assert_array_equal(geometry.n_represented(W), inst.n_represented)
    # the Dataset's variables are the same numbers, placed on the grid by instance
    ds = run.ds.stack(i=tmslab.GRID_DIMS)
    order = np.argsort(ds.instance.values)
    np.testing.assert_allclose(ds.D_star.values[order], inst.dims_per_feature, rtol=2e-5)
    np.testing.assert_allclose(ds.dimensionality.transpose("i", "feature").values[order],
                               feats.dimensionality.to_numpy().reshape(W.shape[0], -1), rtol=2e-5, atol=2e-6)


def test_geometry_closed_forms() -> None:
    # the pentagon: 5 unit columns 72 degrees apart in 2 dimensions -> D_i = 2/5, D* = 2/5,
    # superposition of each = sum_j cos^2(72 k) over the 4 others = 3/2
    angles = 2 * np.pi * np.arange(5) / 5
    W = np.stack([np.cos(angles), np.sin(angles)])  # (2, 5)
    g = geometry.feature_geometry(W)
    np.testing.assert_allclose(g["dimensionality"], 0.4, rtol=1e-12)
    np.testing.assert_allclose(g["superposition"], 1.5, rtol=1e-12)
    assert geometry.dims_per_feature(W) == pytest.approx(0.4)
    # an antipodal pair and a zero column: D_i = 1/2 each, the dead feature 0, not represented
    W = np.array([[1.0, -1.0, 0.0]])
    g = geometry.feature_geometry(W)
    np.testing.assert_allclose(g["dimensionality"], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(geometry.represented(W), [True, True, False])
    assert list(geometry.phase(g["norm"], g["superposition"])) == ["superposition", "superposition",
                                                                    "not represented"]
    # orthogonal columns: each its own dimension
    g = geometry.feature_geometry(np.eye(2))
    assert list(geometry.phase(g["norm"], g["superposition"])) == ["dedicated", "dedicated"]
    # NaN (an absent shard instance) stays NaN, its phase ""
    g = geometry.feature_geometry(np.full((2, 3), np.nan))
    assert np.isnan(g["dimensionality"]).all() and np.isnan(geometry.dims_per_feature(np.full((2, 3), np.nan)))
    assert list(geometry.phase(g["norm"], g["superposition"])) == ["", "", ""]
