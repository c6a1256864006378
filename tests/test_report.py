"""test_report.py RUNDIR RUNDIR_LR RUNDIR_UNTIED RUNDIR_SHARD SCRATCH: python -m tmslab
report, checked against
tmslab.load and in a real headless browser (Debian's chromium + chromium-driver, driven by
selenium).

Run by tests/test_report.sh (CTest `report`, label python), which trains RUNDIR (the
phase-diagram spec, briefly), RUNDIR_LR (the same with two learning rates: a third grid
axis), RUNDIR_UNTIED (6 -> 3, untied, no bias) and RUNDIR_SHARD (shard 0 of 2 of the
phase sweep, 50 steps) and calls this with the project's virtualenv python.

- the command line: the page is written; bad flags and paths are exit 2 with a message
  naming them, and nothing is written
- the budget: choose_detail's tiers hold exactly what they say, computed here again with
  xarray (Run.best, argmin over stacked axes) and never over the byte budget
- the page in chromium: loads with no console error; the heat map's values are the best
  replicate's loss from tmslab.load; a mouse click on a cell shows that instance (title,
  numbers, arrows, W^T W, norms, bias and loss curve against tmslab.load and
  tmslab.geometry), also with a selector fixed to a replicate; for an untied 6 -> 3 model
  the projection on W's leading singular directions, W^T W and W2 W; a shard's page has gaps
  where the other shard's grid points are; a page with a small budget
  says when an instance's weights are not in it; a screenshot is not blank and its heat-map
  pixels at the lowest and highest cells are Viridis's two ends.

`test_report.py --screenshot PAGE PNG` only saves the screenshot of PAGE (the README's).
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tmslab import geometry
from tmslab.__main__ import main as cli
from tmslab.report import choose_detail, detail_tiers
from tmslab.run import GRID_DIMS, load

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
VIRIDIS_LOW, VIRIDIS_HIGH = (0x44, 0x01, 0x54), (0xFD, 0xE7, 0x25)
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def close(a: object, b: object, rtol: float = 2e-6, atol: float = 1e-7) -> bool:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def tmslab(*args: str) -> SimpleNamespace:
    """python -m tmslab ARGS, run in this process (its imports are paid once): exit code,
    stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli(list(args))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


# ----------------------------------------------------------------------------


def check_cli(rundir: Path, scratch: Path) -> Path:
    page = scratch / "phase.html"
    r = subprocess.run([sys.executable, "-m", "tmslab", "report", str(rundir), "--out", str(page)],
                       capture_output=True, text=True)
    check(r.returncode == 0 and page.is_file() and "report: wrote" in r.stdout,
          f"report writes the page (exit {r.returncode}: {r.stderr.strip()[-300:]})")
    bad = [
        (["--out", str(scratch / "a.html"), "--out", str(scratch / "b.html")], "--out given twice"),
        (["--max-detail-mb", "0"], "--max-detail-mb: '0'"),
        (["--max-detail-mb", "lots"], "--max-detail-mb: 'lots'"),
        (["--out", str(scratch / "no" / "such" / "x.html")], "does not exist"),
        (["--out", str(scratch)], "is a folder"),
    ]
    for args, message in bad:
        r = tmslab("report", str(rundir), *args)
        check(r.returncode == 2 and message in r.stderr,
              f"report {' '.join(args)}: exit 2 saying {message!r} (exit {r.returncode}: {r.stderr.strip()[-200:]})")
    r = tmslab("report", str(scratch / "not_a_run"), "--out", str(scratch / "c.html"))
    check(r.returncode == 2 and "not_a_run" in r.stderr, "a missing run directory: exit 2 naming it")
    left = sorted(p.name for p in scratch.iterdir() if p.name.startswith((".", "a.", "b.", "c.", "x.")))
    check(left == [], f"refused reports left nothing behind ({left})")
    return page


def check_budget(rundir: Path) -> None:
    run = load(rundir)
    loss = run.ds.loss.fillna(np.inf)
    inst = run.ds.instance
    tiers = {t: f for t, _, f in detail_tiers(run)}
    check(list(tiers) == ["all", "best replicate", "best over the rest"], f"three tiers ({list(tiers)})")
    check(np.array_equal(tiers["all"], np.arange(int(inst.size))), "tier 'all' is every instance")
    best = np.sort(run.best().instance.values.ravel())
    check(np.array_equal(tiers["best replicate"], best), "tier 'best replicate' is Run.best()'s instances")
    views = set()
    for a, b in combinations([k for k in GRID_DIMS if k != "replicate"], 2):
        rest = [d for d in GRID_DIMS if d not in (a, b)]
        stacked = loss.stack(rest=rest)
        views.update(inst.stack(rest=rest).isel(rest=stacked.argmin("rest")).values.ravel().tolist())
    check(sorted(views) == tiers["best over the rest"].tolist() and views <= set(best.tolist()),
          f"tier 'best over the rest' is each pair of axes' argmin over the others ({len(views)} instances, "
          "all best replicates)")
    whole = choose_detail(run, 1 << 40)  # every instance, whole curves: the bytes of one
    sizes = {t: whole.bytes // len(whole.flat) * len(f) for t, f in tiers.items()}
    for t, f in tiers.items():
        d = choose_detail(run, sizes[t])
        check(d.tier == t and np.array_equal(d.flat, f) and d.bytes <= sizes[t],
              f"a budget of {sizes[t]} bytes takes tier {t!r} whole ({d.tier}, {len(d.flat)}, {d.bytes} bytes)")
    each = whole.bytes // len(whole.flat)
    d = choose_detail(run, sizes["best over the rest"] + 5 * each + each // 2)
    above = np.setdiff1d(tiers["best replicate"], tiers["best over the rest"])
    lowest5 = above[np.argsort(loss.values.ravel()[above], kind="stable")[:5]]
    check(d.tier == "best over the rest" and d.extra == 5
          and np.array_equal(d.flat, np.union1d(tiers["best over the rest"], lowest5)),
          "room for 5 more: the tier and the 5 lowest-loss best replicates outside it")
    small = sizes["best over the rest"] * 6 // 10
    d = choose_detail(run, small)
    check(d.tier == "best over the rest" and 16 <= len(d.curve_index) < len(whole.curve_index) and d.bytes <= small
          and np.array_equal(d.flat, tiers["best over the rest"]),
          f"60% of that: the same instances, shorter curves ({len(d.curve_index)} points, {d.bytes} <= {small} bytes)")
    tiny = 1000
    d = choose_detail(run, tiny)
    lowest = np.sort(loss.values.ravel()[tiers["best over the rest"]])[: len(d.flat)]
    check(d.truncated and len(d.curve_index) == 0 and 0 < d.bytes <= tiny and len(d.flat) < len(tiers["best over the rest"])
          and close(np.sort(loss.values.ravel()[d.flat]), lowest),
          f"{tiny} bytes: the lowest-loss instances that fit, no curves ({len(d.flat)} instances, {d.bytes} bytes)")


# ----------------------------------------------------------------------------
# the browser


def browser(workdir: Path) -> webdriver.Chrome:
    os.environ.setdefault("SE_AVOID_STATS", "true")
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1600,1400", "--force-device-scale-factor=1", "--hide-scrollbars",
              f"--user-data-dir={workdir / 'chromium-profile'}"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


def open_page(d: webdriver.Chrome, page: Path) -> float:
    t0 = time.perf_counter()
    d.get(page.resolve().as_uri())
    for _ in range(600):
        if d.execute_script("return !!(window.tmsReport && window.tmsReport.ready)"):
            break
        time.sleep(0.05)
    return time.perf_counter() - t0


def console_errors(d: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]


def plot_box(d: webdriver.Chrome) -> dict[str, float]:
    box: dict[str, float] = d.execute_script(
        "const r = document.querySelector('#heat .nsewdrag').getBoundingClientRect();"
        "return {left: r.left, top: r.top, width: r.width, height: r.height};")
    return box


def cell_centre(box: dict[str, float], ix: int, iy: int, nx: int, ny: int) -> tuple[float, float]:
    # the page fixes the axes' ranges to [-0.5, n - 0.5]: cell i spans [i/n, (i+1)/n], y upwards
    return (box["left"] + (ix + 0.5) / nx * box["width"],
            box["top"] + box["height"] - (iy + 0.5) / ny * box["height"])


def click_cell(d: webdriver.Chrome, ix: int, iy: int, nx: int, ny: int) -> int:
    before = d.execute_script("return window.tmsReport.state.g")
    x, y = cell_centre(plot_box(d), ix, iy, nx, ny)
    body = d.find_element(By.TAG_NAME, "body")
    r = body.rect
    ActionChains(d).move_to_element_with_offset(body, int(x - r["x"] - r["width"] / 2),
                                                int(y - r["y"] - r["height"] / 2)).click().perform()
    for _ in range(100):
        g = d.execute_script("return window.tmsReport.state.g")
        if g != before:
            return int(g)
        time.sleep(0.05)
    return int(before)


def check_instance(d: webdriver.Chrome, run, g: int, what: str) -> None:
    """The panel shows instance g (flat grid position) as tmslab.load has it."""
    ds = run.ds
    idx = dict(zip(GRID_DIMS, np.unravel_index(g, tuple(ds.sizes[k] for k in GRID_DIMS))))
    one = ds.isel(idx)
    title = d.find_element(By.ID, "instance-title").text
    check(title.startswith(f"instance {int(one.instance)}:") and f"replicate {idx['replicate']}" in title,
          f"{what}: the title names instance {int(one.instance)}, replicate {idx['replicate']} ({title!r})")
    numbers = d.find_element(By.ID, "numbers").text
    loss_shown = float(numbers.split("final loss (mean over features) ")[1].split(" ")[0])
    check(close(loss_shown, float(one.loss), rtol=1e-4), f"{what}: its final loss {loss_shown} is {float(one.loss):.6g}")
    fig = d.execute_script(
        "const f = id => document.getElementById(id).data;"
        "return {geo: f('geometry')[0], gram: f('gram')[0].z, norm: f('norms')[0].y,"
        " sup: f('norms')[0].marker.color, bias: f('bias')[0].y, cx: f('curve')[0].x, cy: f('curve')[0].y,"
        " final: f('curve')[1].y};")
    W = one.W.transpose("hidden", "feature").values  # (m, n)
    n, m = run.n, run.m
    if m == 1:
        check(close(fig["geo"]["x"], W[0]) and fig["geo"]["y"] == list(range(n)),
              f"{what}: the arrows are W's row, one per feature")
    else:
        check(close(fig["geo"]["x"], W[0]) and close(fig["geo"]["y"], W[1]), f"{what}: the arrows are W's columns")
    check(close(fig["gram"], geometry.gram(W), rtol=1e-5, atol=1e-6), f"{what}: W^T W is tmslab.geometry.gram(W)")
    check(close(fig["norm"], one.norm.values), f"{what}: the norm bars are ||W_i||")
    check(close(fig["sup"], one.superposition.values, rtol=1e-5, atol=1e-6), f"{what}: their colour is the superposition")
    check(close(fig["bias"], one.b.values), f"{what}: the bias bars are b")
    steps = np.asarray(fig["cx"], dtype=np.int64)
    check(len(steps) > 10 and close(fig["cy"], one.train_loss.sel(step=steps).values, rtol=1e-6),
          f"{what}: the loss curve is train_loss at {len(steps)} logged steps")
    check(close(fig["final"], [float(one.loss)] * 2), f"{what}: the dashed line is the final loss")


def check_untied(d: webdriver.Chrome, page: Path, run) -> None:
    """An untied m = 3 model without bias: the projection, W2 W, no bias panel."""
    open_page(d, page)
    check(console_errors(d) == [], "the untied m = 3 page: no console errors")
    ds = run.ds
    g = int(ds.sizes["replicate"]) * 2 - 1  # density 0.1's last replicate (grid order)
    d.execute_script("window.tmsReport.select(arguments[0])", g)
    one = ds.isel(dict(zip(GRID_DIMS, np.unravel_index(g, tuple(ds.sizes[k] for k in GRID_DIMS)))))
    W = one.W.transpose("hidden", "feature").values  # (3, n)
    W2 = one.W2.transpose("feature", "hidden").values  # (n, 3)
    fig = d.execute_script(
        "const f = id => document.getElementById(id);"
        "return {x: f('geometry').data[0].x, y: f('geometry').data[0].y,"
        " title: f('geometry').layout.title.text, gram: f('gram').data[0].z, w2w: f('gram2').data[0].z,"
        " gram2: getComputedStyle(f('gram2')).display, bias: getComputedStyle(f('bias')).display};")
    # the two leading singular directions are unique up to sign and rotation within them;
    # the projected columns' Gram matrix W^T U2 U2^T W is not
    U, S, _ = np.linalg.svd(W)
    P = np.array([fig["x"], fig["y"]])
    check(close(P.T @ P, W.T @ U[:, :2] @ U[:, :2].T @ W, rtol=1e-4, atol=1e-5),
          "m = 3: the arrows are W's columns projected on its two leading singular directions")
    share = (S[:2] ** 2).sum() / (S ** 2).sum()
    check(f"{100 * share:.1f}%" in fig["title"], f"the geometry's title gives the share it keeps ({100 * share:.1f}%)")
    check(close(fig["gram"], W.T @ W, rtol=1e-5, atol=1e-6), "untied: W^T W of the encoder")
    check(fig["gram2"] != "none" and close(fig["w2w"], W2 @ W, rtol=1e-5, atol=1e-6),
          "untied: W2 W (input to output) beside it")
    check(fig["bias"] == "none", "no bias: no bias panel")
    check(console_errors(d) == [], "the untied page: still no console errors")


def check_shard(d: webdriver.Chrome, page: Path, run) -> None:
    """A shard's page: the grid points of other shards are gaps, and say so when selected."""
    open_page(d, page)
    check(console_errors(d) == [], "the shard's page: no console errors")
    z = np.array(d.execute_script("return document.getElementById('heat').data[0].z"), dtype=float)
    best = run.ds.loss.min(["lr", "weight_decay", "seed", "replicate"]).transpose("density", "importance").values
    check(np.array_equal(np.isnan(z), np.isnan(best)) and 0 < np.isnan(z).sum() < z.size
          and close(z, np.log10(best), rtol=1e-6),
          f"the shard's heat map: the other shard's {int(np.isnan(z).sum())} cells are gaps, the rest its losses")
    absent = int(np.flatnonzero(run.ds.instance.transpose(*GRID_DIMS).values.ravel() < 0)[-1])
    d.execute_script("window.tmsReport.select(arguments[0])", absent)
    check(d.find_element(By.ID, "instance-title").text.startswith("not in this shard")
          and "Another shard" in d.find_element(By.ID, "missing").text,
          "a grid point of another shard says so")


def check_page(page: Path, small_page: Path, untied_page: Path, shard_page: Path, run, run_small,
               run_untied, run_shard, scratch: Path) -> None:
    ds = run.ds
    d = browser(scratch)
    try:
        seconds = open_page(d, page)
        check(bool(d.execute_script("return !!(window.tmsReport && window.tmsReport.ready)")),
              f"the page is ready ({seconds:.1f} s)")
        errors = console_errors(d)
        check(errors == [], f"no console errors ({errors[:3]})")
        print(f"page: {page.stat().st_size / 1e6:.1f} MB, ready {seconds:.2f} s after the request", flush=True)
        check("Plotly" in d.execute_script("return Object.keys(window).filter(k => k === 'Plotly')"),
              "plotly.js is embedded (window.Plotly from the page itself)")
        heat = d.execute_script("const t = window.tmsReport.heat; return {xa: t.xa, ya: t.ya, nx: t.nx, ny: t.ny,"
                                " z: document.getElementById('heat').data[0].z};")
        xa, ya = GRID_DIMS[heat["xa"]], GRID_DIMS[heat["ya"]]
        check((xa, ya) == ("importance", "density"), f"the heat map's axes: importance across, density up ({xa}, {ya})")
        best = ds.loss.min([k for k in GRID_DIMS if k not in (xa, ya)]).transpose(ya, xa).values
        check(close(heat["z"], np.log10(best), rtol=1e-6), "its cells are log10 of the best replicate's final loss")

        # a mouse click on a cell (not the one selected at start)
        nx, ny = heat["nx"], heat["ny"]
        ix, iy = 7, 3
        g = click_cell(d, ix, iy, nx, ny)
        sel = {xa: ix, ya: iy}
        expect = int(run.best().isel(sel).instance.values.ravel()[0])
        check(g == expect, f"a click on cell ({xa} {ix}, {ya} {iy}) selects its best replicate, instance {expect} (got {g})")
        check_instance(d, run, g, "after the click")

        # screenshot: not blank; the heat map's lowest and highest cells in Viridis's end colours
        shot = scratch / "report.png"
        d.save_screenshot(str(shot))
        img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        colours = len(np.unique(img.reshape(-1, 3), axis=0))
        check(img.std() > 20 and colours > 200, f"the screenshot is not blank ({colours} colours)")
        box = plot_box(d)
        z = np.log10(best)
        for name, flat, colour in (("lowest", np.nanargmin(z), VIRIDIS_LOW), ("highest", np.nanargmax(z), VIRIDIS_HIGH)):
            cy, cx = np.unravel_index(flat, z.shape)
            x, y = cell_centre(box, int(cx), int(cy), nx, ny)
            px = tuple(int(c) for c in img[int(round(y)), int(round(x))])
            check(max(abs(p - c) for p, c in zip(px, colour)) <= 6,
                  f"the {name} cell ({xa} {cx}, {ya} {cy}) is drawn {tuple(px)} = Viridis {colour} at ({x:.0f}, {y:.0f})")
        geo = d.execute_script("const r = document.getElementById('geometry').getBoundingClientRect();"
                               "return [r.left, r.top, r.width, r.height];")
        part = img[int(geo[1]):int(geo[1] + geo[3]), int(geo[0]):int(geo[0] + geo[2])]
        check(part.size > 0 and (part.min(axis=2) < 200).mean() > 0.01,
              f"the geometry panel has ink ({(part.min(axis=2) < 200).mean():.3f} of its pixels)")

        # a replicate fixed by its selector: the cell shows that replicate
        rep = ds.sizes["replicate"] - 1
        Select(d.find_element(By.ID, "fix-replicate")).select_by_value(str(rep))
        ix, iy = 2, 8
        g = click_cell(d, ix, iy, nx, ny)
        expect = int(ds.isel({xa: ix, ya: iy, "replicate": rep}).instance.values.ravel()[0])
        check(g == expect, f"with replicate fixed at {rep}, a click on ({xa} {ix}, {ya} {iy}) selects instance {expect} (got {g})")
        check_instance(d, run, g, "with a fixed replicate")
        check(console_errors(d) == [], "still no console errors")

        check_untied(d, untied_page, run_untied)
        check_shard(d, shard_page, run_shard)

        # the small page: an instance outside its budget shows its numbers and says so
        open_page(d, small_page)
        included = d.find_element(By.ID, "included").text
        check("for every pair of grid axes" in included, f"the small page says what it holds ({included[:120]!r}...)")
        rows = d.execute_script("return Array.from(window.tmsReport.rowOf)")
        outside = [k for k, r in enumerate(rows) if r < 0]
        check(len(outside) > 0, f"the small page leaves out {len(outside)} instances' weights")
        g = outside[0]
        d.execute_script("window.tmsReport.select(arguments[0])", g)
        missing = d.find_element(By.ID, "missing").text
        hidden = d.execute_script("return getComputedStyle(document.getElementById('geometry')).display")
        sds = run_small.ds
        one = sds.isel(dict(zip(GRID_DIMS, np.unravel_index(g, tuple(sds.sizes[k] for k in GRID_DIMS)))))
        check("not in this page" in missing and hidden == "none"
              and f"instance {int(one.instance)}:" in d.find_element(By.ID, "instance-title").text,
              f"instance {int(one.instance)} outside it: named, its figures hidden, {missing[:60]!r}")
        check(console_errors(d) == [], "no console errors on the small page")
    finally:
        d.quit()


def screenshot(page: Path, png: Path) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tms_report_shot.") as profile:
        d = browser(Path(profile))
        try:
            open_page(d, page)
            errors = console_errors(d)
            if errors:
                raise SystemExit(f"console errors: {errors}")
            d.save_screenshot(str(png))
        finally:
            d.quit()


def main() -> int:
    if sys.argv[1] == "--screenshot":
        screenshot(Path(sys.argv[2]), Path(sys.argv[3]))
        return 0
    rundir, rundir_lr, rundir_untied, rundir_shard, scratch = (Path(a) for a in sys.argv[1:6])
    page = check_cli(rundir, scratch)
    tiers = [t for t, _, _ in detail_tiers(load(rundir))]
    check(tiers == ["all", "best replicate"],
          f"the phase sweep (density x importance x replicate): two distinct tiers ({tiers})")
    check_budget(rundir_lr)
    # a page of RUNDIR_LR with room for the smallest tier only
    run_lr = load(rundir_lr)
    small_page = scratch / "small.html"
    whole = choose_detail(run_lr, 1 << 40)
    views = detail_tiers(run_lr)[-1][2]
    r = tmslab("report", str(rundir_lr), "--out", str(small_page), "--max-detail-mb",
               repr((whole.bytes // len(whole.flat) * len(views) + 1) / 1048576))
    check(r.returncode == 0, f"the small page is written ({r.stderr.strip()[-200:]})")
    untied_page = scratch / "untied.html"
    r = tmslab("report", str(rundir_untied), "--out", str(untied_page))
    check(r.returncode == 0, f"the untied page is written ({r.stderr.strip()[-200:]})")
    shard_page = scratch / "shard.html"
    r = tmslab("report", str(rundir_shard), "--out", str(shard_page))
    check(r.returncode == 0, f"the shard's page is written ({r.stderr.strip()[-200:]})")
    check_page(page, small_page, untied_page, shard_page, load(rundir), run_lr, load(rundir_untied),
               load(rundir_shard), scratch)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
