"""tmslab.load: the grid's axes and the model's, every variable placed by instance exactly
as the files and CSVs say; shards, merged shards, runs in progress or interrupted, and
damaged runs (verify)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tmslab
from conftest import SWEEP


def test_axes_and_coordinates(sweep: tmslab.Run) -> None:
    ds = sweep.ds
    assert dict(ds.sizes) == {"density": 3, "importance": 2, "lr": 2, "weight_decay": 2, "seed": 1, "replicate": 2,
                              "hidden": 2, "feature": 6, "step": 6}
    assert list(ds.density.values) == [1, 0.1, 0.03]
    assert list(ds.importance.values) == [1, 0.8]
    assert list(ds.lr.values) == [0.003, 0.01]
    assert list(ds.step.values) == [0, 50, 100, 150, 200, 250]
    assert sweep.spec["train"]["steps"] == 300 and sweep.manifest["status"] == "complete"
    np.testing.assert_allclose(ds.feature_importance.sel(importance=0.8), 0.8 ** np.arange(6))


def test_every_instance_in_its_place(sweep: tmslab.Run) -> None:
    """Each row of instances.csv: its grid values select (with .sel) exactly that
    instance's W, losses and training log from the .npy files."""
    W = np.load(sweep.path / "W.npy")
    b = np.load(sweep.path / "b.npy")
    L = np.load(sweep.path / "loss.npy")
    E = np.load(sweep.path / "eval_loss.npy")
    assert len(sweep.instances) == 48
    for row in sweep.instances.itertuples():
        at = sweep.sel(density=row.density, importance=row.importance_decay, lr=row.lr,
                       weight_decay=row.weight_decay, seed=row.seed, replicate=row.replicate)
        i = row.instance
        assert int(at.instance) == i
        np.testing.assert_array_equal(at.W.transpose("hidden", "feature").values, W[i])
        np.testing.assert_array_equal(at.b.values, b[i])
        np.testing.assert_array_equal(at.train_loss.values, L[i])
        assert float(at.loss) == E[i] == pytest.approx(row.loss_mean_features, rel=1e-6)
        assert float(at.loss_sum) == pytest.approx(row.loss_sum_features, rel=1e-6)
        assert not bool(at.diverged)


def test_best_is_instances_csv_best(sweep: tmslab.Run) -> None:
    best = sweep.best().stack(point=("density", "importance", "lr", "weight_decay", "seed"))
    want = sweep.instances[sweep.instances.best_of_replicates == 1].set_index("grid_point").sort_index()
    got = sorted(int(i) for i in best.instance.values)
    assert got == sorted(want.instance.tolist())
    # and the reduction the README shows
    np.testing.assert_allclose(sweep.loss.min("replicate").values.ravel(),
                               sweep.instances.groupby("grid_point").loss_mean_features.min().to_numpy(), rtol=1e-6)


def test_untied_variables(untied_dir: Path) -> None:
    run = tmslab.load(untied_dir)
    assert list(run.seed.values) == [3, 7] and run.sizes["replicate"] == 1
    W2 = np.load(untied_dir / "W2.npy")
    b1 = np.load(untied_dir / "b1.npy")
    for row in run.instances.itertuples():
        at = run.sel(density=row.density, seed=row.seed, replicate=0).squeeze()
        np.testing.assert_array_equal(at.W2.transpose("feature", "hidden").values, W2[row.instance])
        np.testing.assert_array_equal(at.b1.values, b1[row.instance])
    assert run.snapshots is None  # output.snapshots: none recorded


def test_snapshots_attribute(tmp_path: Path) -> None:
    """Run.snapshots is load_snapshots of the run: the last snapshot is the final W."""
    run = tmslab.train({"model": {"n_features": 4, "n_hidden": 2}}, out=tmp_path / "snap", backend="cpu",
                       progress=False, echo=False, steps=200, density=[1, 0.1], snapshots=[0, 100, 200])
    snap = run.snapshots
    assert snap is not None and list(snap.step.values) == [0, 100, 200]
    np.testing.assert_array_equal(snap.W.sel(step=200).transpose(*run.W.dims).values, run.W.values)


def _tms(tms: Path, *args: str | os.PathLike[str]) -> None:
    subprocess.run([str(tms), *map(str, args)], check=True, capture_output=True)


def test_shards_and_merge(tms: Path, tmp_path: Path, sweep: tmslab.Run) -> None:
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps(SWEEP))
    for k in range(3):
        _tms(tms, "train", spec, "--out", tmp_path / f"shard{k}", "--shard", f"{k}/3", "--backend", "cpu", "--quiet")
    shard = tmslab.load(tmp_path / "shard1")
    present = shard.instance.values >= 0
    ids = shard.instance.values[present]
    assert 0 < present.sum() < 48 and sorted(ids) == list(range(ids.min(), ids.max() + 1))
    # absent instances are NaN, present ones equal the single-process run's
    assert np.isnan(shard.loss.values[~present]).all()
    np.testing.assert_array_equal(shard.loss.values[present], sweep.loss.values[present])
    _tms(tms, "merge", tmp_path / "merged", *(tmp_path / f"shard{k}" for k in range(3)))
    merged = tmslab.load(tmp_path / "merged", verify=True)
    assert (merged.instance.values >= 0).all()
    for v in ("W", "b", "loss", "train_loss", "D_star"):
        np.testing.assert_array_equal(merged[v].values, sweep[v].values, err_msg=v)


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(tmslab.NotARunError, match="does not exist"):
        tmslab.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(tmslab.NotARunError, match="no manifest.json"):
        tmslab.load(tmp_path / "empty")
    assert tmslab.status(tmp_path / "nowhere").status == "missing"


def test_interrupted_run_status_and_resume(tms: Path, tmp_path: Path) -> None:
    """A run stopped by SIGTERM (exit 3) is a .partial that says "interrupted": load says so
    and how to go on, status gives its step, tmslab.train(resume=...) completes it."""
    spec = tmp_path / "long.json"
    spec.write_text(json.dumps({"model": {"n_features": 5, "n_hidden": 2},
                                "train": {"steps": 1000000, "log_every": 100, "eval_samples": 8192},
                                "output": {"images": False, "contact_sheet": False}}))
    out = tmp_path / "long"
    p = subprocess.Popen([str(tms), "train", str(spec), "--out", str(out), "--backend", "cpu", "--progress", "json"],
                         stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    for line in p.stderr:  # wait for training to be under way
        if line.startswith("{"):
            break
    st = tmslab.status(out)
    assert st.status == "running" and st.path.name == "long.partial" and st.writer and not st.complete
    with pytest.raises(tmslab.RunIncompleteError, match="running"):
        tmslab.load(out)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    assert p.returncode == 3
    st = tmslab.status(out)
    assert st.status == "interrupted" and 0 < (st.step or 0) < 1000000 and st.steps == 1000000
    with pytest.raises(tmslab.RunIncompleteError, match="--resume") as e:
        tmslab.load(out)
    assert e.value.status == "interrupted" and e.value.path == tmp_path / "long.partial"
    m = json.loads((tmp_path / "long.partial" / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["steps_completed"] == st.step


def test_resume_from_python(tms: Path, tmp_path: Path) -> None:
    spec = tmp_path / "short.json"
    spec.write_text(json.dumps({"model": {"n_features": 5, "n_hidden": 2},
                                "train": {"steps": 8000, "log_every": 100, "eval_samples": 8192},
                                "output": {"images": False, "contact_sheet": False}}))
    out = tmp_path / "short"
    p = subprocess.Popen([str(tms), "train", str(spec), "--out", str(out), "--backend", "cpu", "--progress", "json",
                          "--threads", "1"], stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    for line in p.stderr:
        if line.startswith("{"):
            break
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    if p.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert p.returncode == 3
    run = tmslab.train(resume=out, backend="cpu", progress=False, echo=False)
    assert run.manifest["status"] == "complete" and run.manifest["steps_completed"] == 8000
    # bit-identical to an uninterrupted run
    full = tmslab.train(spec, out=tmp_path / "full", backend="cpu", progress=False, echo=False)
    np.testing.assert_array_equal(run.W.values, full.W.values)


def test_verify_finds_damage(sweep_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(sweep_dir, run_dir)
    checked = tmslab.verify(run_dir)
    assert {"manifest.json", "W.npy", "b.npy", "loss.npy", "eval_loss.npy"} <= set(checked)
    # one bit of W's data flipped (the last byte of the file is data)
    data = bytearray((run_dir / "W.npy").read_bytes())
    data[-1] ^= 1
    (run_dir / "W.npy").write_bytes(data)
    tmslab.load(run_dir)  # without verify it loads
    with pytest.raises(tmslab.RunIntegrityError, match="W.npy") as e:
        tmslab.load(run_dir, verify=True)
    assert e.value.file.name == "W.npy"
    data[-1] ^= 1
    (run_dir / "W.npy").write_bytes(data)
    # numpy re-saving the same array (another header) is not damage: tms checks the data
    np.save(run_dir / "b.npy", np.load(run_dir / "b.npy"))
    tmslab.verify(run_dir)
    # the manifest's checksum is of its content: re-indented it passes, edited it fails
    m = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps(m, indent=3, ensure_ascii=False))
    assert "manifest.json" in tmslab.verify(run_dir)
    m["spec"]["optimizer"]["lr"][0] = 0.002  # a learning rate changed by hand
    (run_dir / "manifest.json").write_text(json.dumps(m, indent=3, ensure_ascii=False))
    with pytest.raises(tmslab.RunIntegrityError, match="manifest.json: its content's SHA-256"):
        tmslab.verify(run_dir)
