"""Load a tms run directory as labelled arrays.

A run directory (the top-level README) holds manifest.json (status, backend, shard, and
the fully resolved spec under "spec"), W.npy (I, m, n) and, depending on the model,
W2.npy (I, n, m), b1.npy (I, m), b.npy (I, n); eval_loss.npy / eval_loss_se.npy (I) the
final loss (mean over features) and its standard error; loss.npy (I, logs) the training
loss every train.log_every steps; diverged_step.npy (I); instances.csv, features.csv.

Instances are the grid density x importance x lr x weight_decay x seed x replicate in
that order (density slowest), so instance i's place in the grid is np.unravel_index(i,
shape). `load` reshapes every per-instance array onto those six axes, plus the model's
`feature` (n) and `hidden` (m) axes.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import geometry

GRID_DIMS: tuple[str, ...] = ("density", "importance", "lr", "weight_decay", "seed", "replicate")


class RunError(Exception):
    """A directory that tmslab cannot load as a run, with the reason in the message."""


class NotARunError(RunError):
    """The path is not a tms run directory (no manifest.json, or files missing)."""


class RunIntegrityError(RunError):
    """A file of the run does not match the checksum its manifest records for it (or the
    manifest its own): damaged or edited after tms wrote it. `file` names it."""

    def __init__(self, message: str, file: Path) -> None:
        super().__init__(message)
        self.file = file


class RunIncompleteError(RunError):
    """The run exists but is not complete: still training, interrupted, or failed.

    `status` is the manifest's status ("running", "interrupted", "failed"); `path` the
    directory whose manifest says so (RUNDIR.partial while tms writes it)."""

    def __init__(self, message: str, status: str, path: Path) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def grid_coords(spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The six grid axes of a resolved spec, in instance order, as coordinate arrays.

    importance is the importance_decay r (feature i has importance r^i) or, for a spec
    with explicit `data.importance` vectors, the vector's index 0..K-1."""
    data, opt, train = spec["data"], spec["optimizer"], spec["train"]
    if "importance_decay" in data:
        importance = np.asarray(_as_list(data["importance_decay"]), dtype=float)
    else:
        importance = np.arange(len(_importance_vectors(spec)))
    return {
        "density": np.asarray(_as_list(data["density"]), dtype=float),
        "importance": importance,
        "lr": np.asarray(_as_list(opt["lr"]), dtype=float),
        "weight_decay": np.asarray(_as_list(opt["weight_decay"]), dtype=float),
        "seed": np.asarray(_as_list(train["seed"]), dtype=np.int64),  # at most 2^53
        "replicate": np.arange(int(train["seeds"])),
    }


def _importance_vectors(spec: dict[str, Any]) -> np.ndarray:
    """(K, n): each importance setting's per-feature importance."""
    data, n = spec["data"], int(spec["model"]["n_features"])
    if "importance_decay" in data:
        r = np.asarray(_as_list(data["importance_decay"]), dtype=float)
        return r[:, None] ** np.arange(n)[None, :]
    rows = data["importance"]
    if rows and not isinstance(rows[0], list):
        rows = [rows]
    return np.asarray(rows, dtype=float).reshape(-1, n)


def _read_manifest(directory: Path) -> dict[str, Any]:
    with open(directory / "manifest.json") as f:
        manifest: dict[str, Any] = json.load(f)
    return manifest


def _check_complete(path: Path) -> dict[str, Any]:
    """The manifest of a complete run at `path`; raises saying why there is none."""
    partial = path.with_name(path.name + ".partial")
    if path.name.endswith(".partial"):
        final = path.with_name(path.name[: -len(".partial")])
        partial, path = path, final
    if not (path / "manifest.json").is_file():
        if (partial / "manifest.json").is_file():
            m = _read_manifest(partial)
            status = str(m.get("status"))
            steps = m.get("spec", {}).get("train", {}).get("steps", "?")
            why = {
                "running": "tms is training it (or was killed before it could say otherwise)",
                "interrupted": "it was stopped by a signal with a checkpoint saved",
                "failed": f"it failed: {m.get('error', 'no reason recorded')}",
                "complete": "it is complete but was not yet renamed",
            }.get(status, "its status is unknown")
            raise RunIncompleteError(
                f"{path} is not a complete run: {partial}/manifest.json says status {status!r} at step "
                f"{m.get('steps_completed', '?')} of {steps}: {why}; `tms train --resume {path}` continues it",
                status, partial)
        if path.exists():
            raise NotARunError(f"{path} is not a tms run directory: it has no manifest.json")
        raise NotARunError(f"{path} does not exist (nor {partial})")
    m = _read_manifest(path)
    status = m.get("status")
    if status != "complete":
        raise RunIncompleteError(f"{path} is not a complete run: its manifest says status {status!r}",
                                 str(status), path)
    return m


@dataclass(frozen=True)
class RunStatus:
    """Where a run directory stands (tmslab.status): `status` is the manifest's ("complete",
    "running", "interrupted", "failed"; "missing" when there is none), `path` the directory
    holding that manifest (RUNDIR, or RUNDIR.partial while tms writes it), `step` of `steps`
    trained, `writer` the pid and host in RUNDIR.lock when a tms holds or held it (a
    clean exit removes the file), `error` a failed run's reason."""

    path: Path
    status: str
    step: int | None = None
    steps: int | None = None
    instances: int | None = None
    writer: str | None = None
    error: str | None = None

    @property
    def complete(self) -> bool:
        """True when tmslab.load will load it."""
        return self.status == "complete" and not self.path.name.endswith(".partial")


def status(rundir: str | os.PathLike[str]) -> RunStatus:
    """The status of run directory `rundir` (given as RUNDIR or RUNDIR.partial), without
    loading it: for watching a sweep's shards train. Never raises for a missing run
    (status "missing")."""
    path = Path(rundir)
    if path.name.endswith(".partial"):
        path = path.with_name(path.name[: -len(".partial")])
    lock = path.with_name(path.name + ".lock")
    try:
        writer: str | None = lock.read_text().strip() or None
    except OSError:
        writer = None
    for d in (path, path.with_name(path.name + ".partial")):
        if (d / "manifest.json").is_file():
            try:
                m = _read_manifest(d)
            except (OSError, ValueError) as e:
                return RunStatus(d, "unreadable", writer=writer, error=f"manifest.json: {e}")
            steps = m.get("spec", {}).get("train", {}).get("steps")
            return RunStatus(d, str(m.get("status")), m.get("steps_completed"), steps, m.get("instances"), writer,
                             m.get("error"))
    return RunStatus(path, "missing", writer=writer)


def _cjson_number(token: str) -> str:
    """A JSON number as cJSON prints it (print_number): an integral value in int's range as
    %d, else %1.15g, or %1.17g when that does not read back within DBL_EPSILON (cJSON's
    compare_double); NaN and infinities as null."""
    d = float(token)
    if math.isnan(d) or math.isinf(d):
        return "null"
    if d.is_integer() and -(2 ** 31) <= d <= 2 ** 31 - 1:
        return str(int(d))
    s = "%1.15g" % d
    back = float(s)
    if abs(back - d) > max(abs(back), abs(d)) * 2.220446049250313e-16:
        s = "%1.17g" % d
    return s


def _manifest_text_sha256(text: str) -> tuple[str | None, str]:
    """(the "sha256" a manifest records, the SHA-256 tms computes of it): of the object
    printed compactly by cJSON without its "sha256" key, so the file's layout and the way
    its numbers are written do not matter, only their values."""
    mark = "\x00"

    def number(tok: str) -> str:
        return mark + _cjson_number(tok) + mark

    d = json.loads(text, parse_float=number, parse_int=number)
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    recorded = d.pop("sha256", None)
    compact = json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    compact = re.sub(r'"\\u0000([^"\\]*)\\u0000"', r"\1", compact)
    return (recorded if isinstance(recorded, str) else None), hashlib.sha256(compact.encode()).hexdigest()


def _array_sha256(path: Path) -> str:
    """tms's checksum of an array file: SHA-256 of its data, little-endian C order (not
    of the header: numpy's re-save of the same array keeps it)."""
    a = np.load(path, allow_pickle=False)
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def verify(rundir: str | os.PathLike[str]) -> list[str]:
    """Check a complete run against its manifest's checksums: the manifest's own "sha256"
    and each array file's under "files". Returns the names checked (empty when the manifest
    records no checksums: a run from a tms before they existed); raises RunIntegrityError
    naming the first file that does not match or is missing."""
    path = Path(rundir)
    _check_complete(path)
    if path.name.endswith(".partial"):
        path = path.with_name(path.name[: -len(".partial")])
    mpath = path / "manifest.json"
    text = mpath.read_text()
    recorded, computed = _manifest_text_sha256(text)
    checked: list[str] = []
    if recorded is not None:
        if recorded != computed:
            raise RunIntegrityError(f"{mpath}: its content's SHA-256 is {computed}, but it records {recorded}: "
                                    "edited or damaged after tms wrote it", mpath)
        checked.append("manifest.json")
    files = json.loads(text).get("files", {})
    for name, want in files.items():
        f = path / name
        if not f.is_file():
            raise RunIntegrityError(f"{f}: missing, but the manifest records a checksum for it", f)
        try:
            got = _array_sha256(f)
        except (OSError, ValueError) as e:
            raise RunIntegrityError(f"{f}: cannot be read as an array ({e})", f) from e
        if got != want:
            raise RunIntegrityError(f"{f}: its data's SHA-256 is {got}, but the manifest records {want}: "
                                    "damaged or edited after tms wrote it", f)
        checked.append(name)
    return checked


_verify_run = verify  # load()'s `verify` argument shadows the function there


def _snapshots(run: "Run") -> xr.Dataset | None:
    """Run.snapshots: load_snapshots(run.path), or None when the run recorded none."""
    if not run.manifest.get("snapshots"):
        return None
    return load_snapshots(run.path)


def _npy(path: Path, name: str, shape: tuple[int, ...], required: bool = True) -> np.ndarray | None:
    p = path / name
    if not p.is_file():
        if required:
            raise NotARunError(f"{path} is not a complete run directory: {name} is missing")
        return None
    a = np.load(p)
    if a.shape != shape:
        raise RunError(f"{p}: shape {a.shape}, but the manifest says {shape}")
    return a


class Run:
    """A loaded run directory.

    `ds` is an xarray Dataset over the grid's six axes (`density`, `importance`, `lr`,
    `weight_decay`, `seed`, `replicate`; every axis kept, also those of length 1, so code
    written for a sweep works on a single run: `run.ds.squeeze()` drops them) and the
    model's `feature` (n) and `hidden` (m). A Run reads as its Dataset: `run.W`,
    `run.sel(density=0.05)`, `run.loss.min("replicate")` are `run.ds.W`, ... Variables:

    - W (grid, hidden, feature); W2 (grid, feature, hidden), untied decoder only;
      b (grid, feature), b1 (grid, hidden), where the model has them
    - loss, loss_se: the final loss (mean over features, the notebook's normalisation) on
      fresh samples and its standard error; loss_sum = n * loss (the paper's)
    - train_loss (grid, step): the training loss every train.log_every steps
    - diverged (grid, bool) and diverged_step (grid, float: NaN when it did not diverge or
      the step is unknown). A diverged instance's losses are NaN and its weights those it
      had when it was frozen; xarray's reductions skip NaN (`skipna`), so
      `run.loss.min("replicate")` is the best healthy replicate
    - instance (grid, int): the instance's index in the run's files (-1: not in this shard)
    - geometry computed from W (tmslab.geometry): norm, superposition, dimensionality
      (grid, feature), D_star and n_represented (grid)
    - feature_importance (importance, feature): each importance setting's I_i

    `manifest` and `spec` (the resolved spec) are dicts; `instances` and `features` the
    CSVs as pandas frames (read on first use).
    """

    def __init__(self, path: Path, manifest: dict[str, Any], ds: xr.Dataset) -> None:
        self.path = path
        self.manifest = manifest
        self.spec: dict[str, Any] = manifest["spec"]
        self.ds = ds

    @cached_property
    def instances(self) -> pd.DataFrame:
        """instances.csv: one row per instance (grid values, losses, D*, best_of_replicates)."""
        return pd.read_csv(self.path / "instances.csv", dtype={"philox_key": np.uint64})

    @cached_property
    def features(self) -> pd.DataFrame:
        """features.csv: one row per (instance, feature): importance, norm, superposition,
        dimensionality, bias."""
        return pd.read_csv(self.path / "features.csv")

    @property
    def n(self) -> int:
        """model.n_features"""
        return int(self.spec["model"]["n_features"])

    @property
    def m(self) -> int:
        """model.n_hidden"""
        return int(self.spec["model"]["n_hidden"])

    @cached_property
    def snapshots(self) -> xr.Dataset | None:
        """The parameters recorded during training (output.snapshots; see load_snapshots), or
        None when the run recorded none."""
        return _snapshots(self)

    def verify(self) -> list[str]:
        """tmslab.verify(self.path): check the files against the manifest's checksums."""
        return verify(self.path)

    def at(self, instance: int) -> xr.Dataset:
        """The grid point of instance `instance` (its index in the grid, the `instance`
        column of instances.csv and features.csv): every variable there, the grid's axes
        reduced to their values there."""
        shape = tuple(self.ds.sizes[d] for d in GRID_DIMS)
        if not 0 <= instance < math.prod(shape):
            raise IndexError(f"instance {instance}: the grid has {math.prod(shape)} instances")
        return self.ds.isel(dict(zip(GRID_DIMS, np.unravel_index(instance, shape))))

    def best(self) -> xr.Dataset:
        """The Dataset with the replicate axis reduced to each grid point's best replicate:
        the lowest final loss, diverged (NaN) replicates never chosen while another is
        healthy (instances.csv's best_of_replicates). The chosen index is `replicate`."""
        loss = self.ds.loss.fillna(np.inf)
        return self.ds.isel(replicate=loss.argmin("replicate"))

    def __getattr__(self, name: str) -> Any:
        # only called for names Run itself lacks: the Dataset's variables and methods
        if name in ("ds", "__setstate__") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.ds, name)

    def __getitem__(self, key: Any) -> Any:
        return self.ds[key]

    def __contains__(self, key: object) -> bool:
        return key in self.ds

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}: {s}" for d, s in self.ds.sizes.items())
        return f"<tmslab.Run {self.spec.get('name')!r} at {self.path} ({sizes})>"


def load(rundir: str | os.PathLike[str], verify: bool = False) -> Run:
    """Load the tms run directory `rundir` (see Run).

    A shard (tms train --shard K/N) loads onto the whole grid with NaN (instance -1)
    where its instances are not; `tms merge` of the shards, or a single-process run, fills
    it. A run still being written (RUNDIR.partial, given as RUNDIR or RUNDIR.partial), or
    interrupted or failed, raises RunIncompleteError saying its status and how to go on;
    a directory that is no run raises NotARunError. With verify=True the files are first
    checked against the manifest's checksums (tmslab.verify; RunIntegrityError)."""
    path = Path(rundir)
    manifest = _check_complete(path)
    if verify:
        _verify_run(path)
    if path.name.endswith(".partial"):
        path = path.with_name(path.name[: -len(".partial")])
    spec = manifest["spec"]
    model = spec["model"]
    n, m = int(model["n_features"]), int(model["n_hidden"])
    coords = grid_coords(spec)
    shape = tuple(len(c) for c in coords.values())
    grid_total = math.prod(shape)
    shard = manifest.get("shard", {})
    first = int(shard.get("first_instance", 0))
    count = int(manifest["instances"])
    if int(shard.get("grid_instances", grid_total)) != grid_total or first + count > grid_total:
        raise RunError(f"{path}/manifest.json: instances {first}..{first + count} of a grid of "
                       f"{shard.get('grid_instances')}, but its spec's grid has {grid_total}")

    def grid(a: np.ndarray | None, fill: float = np.nan) -> np.ndarray | None:
        """a (count, ...) -> (grid..., ...), absent instances filled"""
        if a is None:
            return None
        full = np.full((grid_total,) + a.shape[1:], fill, dtype=np.float64 if fill is np.nan else a.dtype)
        full[first:first + count] = a
        return full.reshape(shape + a.shape[1:])

    G = GRID_DIMS
    W = _npy(path, "W.npy", (count, m, n))
    W2 = _npy(path, "W2.npy", (count, n, m), required=model["decoder"] == "untied")
    has_b = bool(model["bias"])
    b = _npy(path, "b.npy", (count, n), required=has_b)
    has_b1 = has_b and model["hidden_activation"] == "relu" and model.get("hidden_bias", True)
    b1 = _npy(path, "b1.npy", (count, m), required=has_b1)
    eval_loss = _npy(path, "eval_loss.npy", (count,))
    eval_se = _npy(path, "eval_loss_se.npy", (count,))
    logs = np.load(path / "loss.npy") if (path / "loss.npy").is_file() else None
    if logs is None or logs.ndim != 2 or logs.shape[0] != count:
        raise NotARunError(f"{path}: loss.npy is missing or not ({count}, logs)")
    div = _npy(path, "diverged_step.npy", (count,))
    assert W is not None and eval_loss is not None and eval_se is not None and div is not None

    Wg = grid(W)
    assert Wg is not None
    variables: dict[str, Any] = {
        "W": (G + ("hidden", "feature"), Wg),
        "loss": (G, grid(eval_loss)),
        "loss_se": (G, grid(eval_se)),
        "loss_sum": (G, grid(eval_loss.astype(np.float64) * n)),
        "train_loss": (G + ("step",), grid(logs)),
        "diverged": (G, grid(div != 0, fill=False)),
        "diverged_step": (G, grid(np.where(div > 0, div - 1, np.nan))),
        "instance": (G, grid(np.arange(first, first + count), fill=-1)),
    }
    if W2 is not None:
        variables["W2"] = (G + ("feature", "hidden"), grid(W2))
    if b is not None:
        variables["b"] = (G + ("feature",), grid(b))
    if b1 is not None:
        variables["b1"] = (G + ("hidden",), grid(b1))
    geo = geometry.feature_geometry(Wg)
    for k in ("norm", "superposition", "dimensionality"):
        variables[k] = (G + ("feature",), geo[k])
    variables["D_star"] = (G, geometry.dims_per_feature(Wg))
    variables["n_represented"] = (G, geometry.n_represented(Wg))
    variables["feature_importance"] = (("importance", "feature"), _importance_vectors(spec))

    log_every = int(spec["train"]["log_every"])
    all_coords: dict[str, Any] = dict(coords)
    all_coords["feature"] = np.arange(n)
    all_coords["hidden"] = np.arange(m)
    all_coords["step"] = np.arange(logs.shape[1]) * log_every
    attrs = {
        "name": spec.get("name", ""),
        "path": str(path),
        "n_features": n,
        "n_hidden": m,
        "steps": int(spec["train"]["steps"]),
        "backend": manifest.get("backend", ""),
        "tms_version": manifest.get("tms_version", ""),
        "shard": f"{shard.get('index', 0)}/{shard.get('count', 1)}",
    }
    ds = xr.Dataset(variables, coords=all_coords, attrs=attrs)
    return Run(path, manifest, ds)


def load_snapshots(rundir: str | os.PathLike[str]) -> xr.Dataset:
    """The parameters a run recorded during training (spec `output.snapshots`).

    Returns a Dataset over `step` (the steps of snapshots/steps.npy: the parameters after
    that many steps, 0 the initialisation), the grid's six axes (as `load`) and `hidden` /
    `feature`: W (step, grid, hidden, feature) and W2, b1, b where the model has them,
    with the geometry of every snapshot's W (norm, superposition, dimensionality: (step,
    grid, feature); D_star: (step, grid)). A shard's absent instances are NaN. Raises
    RunError when the run recorded no snapshots."""
    path = Path(rundir)
    manifest = _check_complete(path)
    if path.name.endswith(".partial"):
        path = path.with_name(path.name[: -len(".partial")])
    snap = manifest.get("snapshots")
    if not snap:
        raise RunError(f"{path} recorded no snapshots (its spec has no output.snapshots)")
    spec = manifest["spec"]
    n, m = int(spec["model"]["n_features"]), int(spec["model"]["n_hidden"])
    coords = grid_coords(spec)
    shape = tuple(len(c) for c in coords.values())
    grid_total = math.prod(shape)
    first = int(manifest.get("shard", {}).get("first_instance", 0))
    count = int(manifest["instances"])
    steps = np.load(path / "snapshots" / "steps.npy")
    if list(steps) != list(snap["steps"]):
        raise RunError(f"{path}/snapshots/steps.npy holds {list(steps)}, the manifest {snap['steps']}")
    S = len(steps)
    G = ("step",) + GRID_DIMS
    inner = {"W": (("hidden", "feature"), (m, n)), "W2": (("feature", "hidden"), (n, m)),
             "b1": (("hidden",), (m,)), "b": (("feature",), (n,))}
    variables: dict[str, Any] = {}
    for name in manifest["tensors"]:
        dims, tail = inner[name]
        a = _npy(path, f"snapshots/{name}.npy", (S, count) + tail)
        assert a is not None
        full = np.full((S, grid_total) + tail, np.nan, dtype=np.float64)
        full[:, first:first + count] = a
        variables[name] = (G + dims, full.reshape((S,) + shape + tail))
    W = variables["W"][1]
    geo = geometry.feature_geometry(W)
    for k in ("norm", "superposition", "dimensionality"):
        variables[k] = (G + ("feature",), geo[k])
    variables["D_star"] = (G, geometry.dims_per_feature(W))
    all_coords: dict[str, Any] = dict(coords)
    all_coords.update(step=steps, feature=np.arange(n), hidden=np.arange(m))
    return xr.Dataset(variables, coords=all_coords, attrs={"name": spec.get("name", ""), "path": str(path)})
