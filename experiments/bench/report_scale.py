"""report_scale.py: how big and how fast the report page (python -m tmslab report) is at
100,000 instances, in headless Chromium. Writes experiments/bench/RESULTS_report.md.

    .venv/bin/python experiments/bench/report_scale.py [--tms build/tms] [--scratch DIR]
        [--steps 100] [--reps 3] [--reuse] [--results FILE]

Trains two sweeps of 100,000 instances of 5 -> 2 briefly (--steps, batch 128, on the CPU):
  replicates  density 100 x importance_decay 100 x 10 replicates
  grid        density 100 x importance_decay 100 x lr 10, one replicate each
writes each one's report with the default budget, and measures the file's size, the time to
write it, and in Chromium (tests/test_report.py's browser: Debian's chromium driven by
selenium) the time from the request to the page being ready (data decoded, heat map and
the first instance drawn), a heat-map redraw (another colour metric) and showing another
instance (select(g): its six figures). Each browser number is the median of --reps loads.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

repo = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(repo / "tests"))
from test_report import browser, console_errors, open_page  # noqa: E402

from tmslab.report import DEFAULT_MAX_DETAIL_MB, write_report  # noqa: E402


def sweeps(steps: int) -> dict[str, dict]:
    density = [float(f"{v:.4g}") for v in np.logspace(0, -2, 100)]
    decay = [float(f"{v:.4g}") for v in np.linspace(0.5, 1.0, 100)]
    base = {"model": {"n_features": 5, "n_hidden": 2},
            "data": {"density": density, "importance_decay": decay, "batch_size": 128},
            "train": {"steps": steps, "log_every": 1, "eval_samples": 8192},
            "output": {"images": False, "contact_sheet": False}}
    replicates = json.loads(json.dumps(base))
    replicates["name"] = "scale_replicates"
    replicates["train"]["seeds"] = 10
    grid = json.loads(json.dumps(base))
    grid["name"] = "scale_grid"
    grid["optimizer"] = {"lr": [float(f"{v:.3g}") for v in np.logspace(-3, -2, 10)]}
    return {"replicates": replicates, "grid": grid}


def measure(page: Path, reps: int, scratch: Path) -> dict[str, float]:
    loads, heats, shows = [], [], []
    d = browser(scratch)
    try:
        for _ in range(reps):
            loads.append(open_page(d, page))
            errors = console_errors(d)
            if errors:
                raise SystemExit(f"{page}: console errors {errors[:3]}")
            heats.append(d.execute_script(
                "const s = document.getElementById('metric'); s.value = '3';"
                "const t = performance.now(); s.dispatchEvent(new Event('change'));"
                "return performance.now() - t;") / 1000)
            shows.append(d.execute_script(
                "const R = window.tmsReport; const rows = R.rowOf; let g = -1;"
                "for (let k = rows.length - 1; k >= 0; k--) if (rows[k] >= 0 && k !== R.state.g) { g = k; break; }"
                "const t = performance.now(); R.select(g); return performance.now() - t;") / 1000)
        detail = d.execute_script("return window.tmsReport.detail")
    finally:
        d.quit()
    return {"load": statistics.median(loads), "heat": statistics.median(heats),
            "show": statistics.median(shows), "detail": detail}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tms", default=str(repo / "build" / "tms"))
    ap.add_argument("--scratch", default="/tmp/tms_report_scale")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the sweeps an earlier call trained in --scratch (same names and steps)")
    ap.add_argument("--results", default=str(repo / "experiments" / "bench" / "RESULTS_report.md"))
    args = ap.parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, spec in sweeps(args.steps).items():
        spec_path = scratch / f"{name}.json"
        spec_path.write_text(json.dumps(spec))
        rundir = scratch / name
        t0 = time.perf_counter()
        manifest = rundir / "manifest.json"
        if args.reuse and manifest.is_file() and json.loads(manifest.read_text())["spec"]["name"] == spec["name"] \
                and json.loads(manifest.read_text())["spec"]["train"]["steps"] == args.steps:
            train_s = float("nan")  # trained by an earlier call
        else:
            subprocess.run([args.tms, "train", str(spec_path), "--out", str(rundir), "--force", "--quiet"], check=True)
            train_s = time.perf_counter() - t0
        page = scratch / f"{name}.html"
        t0 = time.perf_counter()
        write_report(rundir, page)
        write_s = time.perf_counter() - t0
        m = measure(page, args.reps, scratch)
        rows.append({"name": name, "train": train_s, "write": write_s,
                     "size": page.stat().st_size, **m})
        print(json.dumps(rows[-1]), flush=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    lines = [
        "# The report page at 100,000 instances",
        "",
        f"Written by `experiments/bench/report_scale.py` on {datetime.date.today().isoformat()}, commit "
        f"{commit}; {cpu}, {os.cpu_count()} cores (shared, not quiet); {chromium}, headless, "
        f"window 1600x1400. Two sweeps of 100,000 instances of 5 -> 2, {args.steps} steps (batch 128, "
        f"a loss logged every step), each page written with the default budget "
        f"(`--max-detail-mb {DEFAULT_MAX_DETAIL_MB:g}`). Browser times are the median of {args.reps} loads.",
        "",
        "| sweep | page size | write the page | load to ready | heat-map redraw | show an instance | weights included for |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    what = {"replicates": "density 100 x importance_decay 100 x 10 replicates",
            "grid": "density 100 x importance_decay 100 x lr 10, 1 replicate"}
    for r in rows:
        det = r["detail"]
        lines.append(f"| {what[r['name']]} | {r['size'] / 1e6:.1f} MB | {r['write']:.1f} s | {r['load']:.2f} s | "
                     f"{1000 * r['heat']:.0f} ms | {1000 * r['show']:.0f} ms | {det['count']:,} instances "
                     f"(tier '{det['tier']}', {det['bytes'] / 1048576:.1f} MiB, loss curves of "
                     f"{det['curve_points']} points) |")
    if not any(np.isnan(r["train"]) for r in rows):
        lines += ["", "Training took " + ", ".join(f"{r['train']:.0f} s ({r['name']})" for r in rows)
                  + " (not part of the page)."]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
