"""tmslab.train: specs from dicts, files and keyword overrides; tms's errors as TmsError
with its message and exit code; the progress bar fed by `tms train --progress json`."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

import tmslab
from tmslab.training import run_tms, set_flags


def test_keyword_overrides_reach_the_spec(tmp_path: Path) -> None:
    run = tmslab.train({"model": {"n_features": 4, "n_hidden": 2}}, out=tmp_path / "kw", backend="cpu",
                       progress=False, echo=False, steps=120, density=[1, 0.2], optimizer="adam", seeds=2,
                       model={"decoder": "untied"}, **{"train.log_every": 30, "output.images": False})
    spec = run.spec
    assert spec["name"] == "kw"  # a dict without a name takes the run directory's
    assert spec["train"]["steps"] == 120 and spec["train"]["seeds"] == 2 and spec["train"]["log_every"] == 30
    assert spec["data"]["density"] == [1, 0.2] and spec["optimizer"]["name"] == "adam"
    assert spec["model"]["decoder"] == "untied" and spec["output"]["images"] is False
    assert "W2" in run and run.sizes["step"] == 4 and run.manifest["steps_completed"] == 120


def test_spec_file_with_overrides(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    run = tmslab.train(repo / "experiments" / "pentagon.json", out=tmp_path / "p", backend="cpu", progress=False,
                       echo=False, steps=100, density=0.05, seeds=1, images=False, contact_sheet=False)
    assert run.spec["name"] == "pentagon" and run.sizes["density"] == 1 and run.spec["train"]["steps"] == 100


def test_every_spec_field_has_a_keyword() -> None:
    """SPEC_FIELDS covers the README's spec table (a field added to tms needs its keyword)."""
    import re

    from tmslab.training import SPEC_FIELDS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = set(re.findall(r"^\| `(model|data|optimizer|train|output)\.([a-z_]+)`", readme, re.M))
    ours = {(section, field) for field, section in SPEC_FIELDS.items()} | {("optimizer", "name")}
    assert table and table == ours, (table - ours, ours - table)


def test_set_flags() -> None:
    assert set_flags({"steps": 10, "density": [1, 0.1], "optimizer": "adam", "model": {"bias": False},
                      "train.seed": 3}) == [
        "--set", "train.steps=10", "--set", "data.density=[1,0.1]", "--set", "optimizer.name=\"adam\"",
        "--set", "model.bias=false", "--set", "train.seed=3"]
    with pytest.raises(TypeError, match="unknown spec field 'densty'"):
        set_flags({"densty": 0.1})


def test_errors_are_tms_errors(tmp_path: Path) -> None:
    # bad input: exit 2 with tms's message naming the field and the value; nothing loaded
    with pytest.raises(tmslab.TmsError, match=r"data.density: 2 is not allowed") as e:
        tmslab.train({"model": {"n_features": 5, "n_hidden": 2}}, out=tmp_path / "bad", density=2, progress=False,
                     echo=False)
    assert e.value.returncode == 2 and "spec (dict)" in e.value.message and not (tmp_path / "bad").exists()
    with pytest.raises(tmslab.TmsError, match="model.n_hidden: missing") as e:
        tmslab.train({"model": {"n_features": 5}}, out=tmp_path / "bad", progress=False, echo=False)
    assert e.value.returncode == 2
    # an existing run directory is refused (exit 2), replaced with force=True
    spec = {"model": {"n_features": 3, "n_hidden": 1}, "train": {"steps": 20}, "output": {"images": False}}
    tmslab.train(spec, out=tmp_path / "r", progress=False, echo=False, backend="cpu")
    with pytest.raises(tmslab.TmsError, match="already exists") as e:
        tmslab.train(spec, out=tmp_path / "r", progress=False, echo=False, backend="cpu")
    assert e.value.returncode == 2
    assert tmslab.train(spec, out=tmp_path / "r", force=True, steps=30, progress=False, echo=False,
                        backend="cpu").manifest["steps_completed"] == 30
    # flags reach tms: --cuda-path with --backend cpu is refused by tms, naming both
    with pytest.raises(tmslab.TmsError, match="--cuda-path fused with --backend cpu") as e:
        tmslab.train(spec, out=tmp_path / "c", cuda_path="fused", backend="cpu", progress=False, echo=False)
    assert e.value.returncode == 2
    # a runtime failure: exit 1
    (tmp_path / "blocker").write_text("")
    with pytest.raises(tmslab.TmsError, match="cannot create directory") as e:
        tmslab.train(spec, out=tmp_path / "blocker" / "r", progress=False, echo=False, backend="cpu")
    assert e.value.returncode == 1


def test_progress_bar_follows_tms(tms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every JSON progress line moves the bar to its step; the bar ends at the last step
    with the last loss; the other lines are tms's messages, passed on."""
    import tmslab.training as tr

    from tqdm import tqdm

    bars: list[object] = []

    def spy(total: int, initial: int, desc: str, enabled: bool) -> object:
        bar = tqdm(total=total, initial=initial, desc=desc, file=io.StringIO())  # drawn, but not here
        bars.append(bar)
        return bar

    monkeypatch.setattr(tr, "_progress_bar", spy)
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"model": {"n_features": 5, "n_hidden": 2}, "train": {"steps": 3000},
                                "output": {"images": False, "contact_sheet": False}}))
    messages = run_tms([str(tms), "train", str(spec), "--out", str(tmp_path / "o"), "--backend", "cpu",
                        "--progress", "json"], echo=None)
    assert len(bars) == 1
    bar = bars[0]
    assert bar.total == 3000 and bar.n == 3000  # type: ignore[attr-defined]
    loss = np.load(tmp_path / "o" / "loss.npy").astype(np.float64)[:, -1].mean()
    assert float(bar.postfix.split("=")[1]) == pytest.approx(loss, rel=1e-5)  # type: ignore[attr-defined]
    assert messages[0].startswith("tms: training s:") and messages[-1].startswith("tms: wrote")
    assert not any(m.startswith("{") for m in messages)


def test_find_tms(tms: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMS_BIN", str(tmp_path / "nothing"))
    with pytest.raises(tmslab.TmsNotFoundError, match="TMS_BIN"):
        tmslab.find_tms()
    # on PATH: a directory holding a link named tms
    monkeypatch.delenv("TMS_BIN")
    (tmp_path / "bin").mkdir()
    os.symlink(tms, tmp_path / "bin" / "tms")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert tmslab.find_tms() == tmp_path / "bin" / "tms"
    # something else called tms on PATH is passed over (for the repository's build/tms,
    # or no tms at all)
    (tmp_path / "bin" / "tms").unlink()
    (tmp_path / "bin" / "tms").write_text("#!/bin/sh\necho not it\n")
    (tmp_path / "bin" / "tms").chmod(0o755)
    built = Path(tmslab.__file__).resolve().parents[2] / "build" / "tms"
    if built.exists():
        assert tmslab.find_tms() == built
    else:
        with pytest.raises(tmslab.TmsNotFoundError, match="not tms"):
            tmslab.find_tms()


def test_ctrl_c_stops_tms_with_a_checkpoint(tms: Path, tmp_path: Path) -> None:
    """Ctrl-C in Python (SIGINT to the Python process alone, as Jupyter's interrupt sends
    it) is passed on to tms, which saves a checkpoint and exits 3: TmsError(returncode=3);
    the run is then "interrupted" and tmslab.train(resume=...) can continue it."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "long"
    code = f"""
import sys, tmslab
try:
    tmslab.train({{"model": {{"n_features": 5, "n_hidden": 2}}, "train": {{"steps": 1000000, "log_every": 100}}}},
                 out={str(out)!r}, backend="cpu", progress=False, echo=False, tms={str(tms)!r})
except tmslab.TmsError as e:
    print("returncode", e.returncode)
    print(e.message)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while tmslab.status(out).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # past the start: training under way
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=120)
    assert "returncode 3" in stdout and "checkpoint saved" in stdout, stdout
    st = tmslab.status(out)
    assert st.status == "interrupted" and 0 <= (st.step or 0) < 1000000
