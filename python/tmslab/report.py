"""tmslab.report: one self-contained HTML page that explores a run or a merged sweep.

    python -m tmslab report RUNDIR [--out FILE] [--max-detail-mb MB]

writes RUNDIR/report.html (or FILE): a page that opens offline from disk (plotly.js, from
the plotly package, is embedded; nothing is fetched) with

- the grid's axes as selectors and a heat map of a summary (final loss, D*, represented
  features, ...) over two chosen axes, each cell showing the best instance (lowest final
  loss) over the axes left at "best", or at the values the selectors fix;
- a click on a cell: that instance's geometry (the columns W_i of W as arrows for m = 2,
  one row per feature for m = 1, the projection onto W's two leading singular directions
  for m >= 3), W^T W (and W2 W for an untied decoder), the feature norms ||W_i|| coloured
  by superposition, the bias, its training-loss curve and its numbers;
- the manifest.

What goes in is budgeted (see `choose_detail`): the summaries of every instance always
(a few bytes each), and the weights, per-feature geometry and loss curve of as many
instances as fit in `max_detail_mb`: all of them when they fit, else the best replicate of
every grid point, else at least the instances any heat map with every other axis at
"best" can show (the best over the rest of each cell of each pair of axes other than
replicate); a tier that fits is topped up with the lowest-loss instances of the one above.
The page says which. The numbers come from tmslab.load (run.py) and tmslab.geometry, never recomputed
here: the page draws them; its JavaScript (report.js) only multiplies W^T W for the map.
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .run import Run

# tmslab.run (xarray, pandas) is imported where it is used, so that building the command
# line (python -m tmslab --help) does not pay for it

DEFAULT_MAX_DETAIL_MB = 8.0  # the per-instance payload (x 4/3 in base64); plotly.js adds 4.6 MiB
MAX_CURVE_POINTS = 200  # loss-curve points kept per instance (every k-th logged point)
MIN_CURVE_POINTS = 16  # below this the curves are dropped before instances are
AXIS_LABELS = {
    "density": "density",
    "importance": "importance",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "seed": "seed",
    "replicate": "replicate",
}


# ----------------------------------------------------------------------------
# what goes into the page


@dataclass
class Detail:
    """The instances whose weights the page carries.

    `flat` (K,) are positions in the grid (C order over GRID_DIMS, = the instance index in a
    complete run), sorted; `tier` names the rule that chose them ("all", "best replicate",
    "best over the rest"); `curve_index` the logged steps kept of each loss curve;
    `truncated` is True when even the last tier did not fit and only the lowest-loss
    `len(flat)` of it were kept; `extra` counts the instances added to a tier that fits
    whole (the lowest-loss ones of the tier above it, as many as the budget leaves room for)."""

    flat: np.ndarray
    tier: str
    description: str
    curve_index: np.ndarray
    bytes: int
    truncated: bool = False
    extra: int = 0


def _finite_loss(run: Run) -> np.ndarray:
    """The final loss over the grid (GRID_DIMS order) with NaN (diverged, absent) as +inf,
    so that argmin never picks a NaN while a healthy instance is there (Run.best's rule)."""
    from .run import GRID_DIMS

    loss = run.ds.loss.transpose(*GRID_DIMS).values
    return np.where(np.isnan(loss), np.inf, loss)


def best_over_rest(loss: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    """Flat grid positions of the lowest-loss instance of each cell of the axes `keep`,
    taken over all the other axes (ties and all-inf cells: the first in grid order).
    Returns an array shaped like the kept axes."""
    shape = loss.shape
    rest = tuple(a for a in range(loss.ndim) if a not in keep)
    moved = np.moveaxis(loss, keep + rest, tuple(range(loss.ndim)))
    kept_shape = tuple(shape[a] for a in keep)
    flat_rest = moved.reshape(kept_shape + (-1,))
    arg = flat_rest.argmin(axis=-1)  # index into the rest, C order over `rest`
    rest_coords = np.unravel_index(arg, tuple(shape[a] for a in rest)) if rest else ()
    kept_coords = np.indices(kept_shape)
    full: list[np.ndarray] = [np.empty(0)] * loss.ndim
    for i, a in enumerate(keep):
        full[a] = kept_coords[i]
    for i, a in enumerate(rest):
        full[a] = rest_coords[i]
    return np.ravel_multi_index(tuple(full), shape)


def detail_tiers(run: Run) -> list[tuple[str, str, np.ndarray]]:
    """The candidate sets of instances with weights, each a subset of the one before:
    (tier, description, flat positions); a tier equal to the one before is left out.
    Instances absent from a shard (instance -1) are never in one."""
    from .run import GRID_DIMS

    loss = _finite_loss(run)
    present = run.ds.instance.transpose(*GRID_DIMS).values.ravel() >= 0
    total = loss.size
    tiers: list[tuple[str, str, np.ndarray]] = [
        ("all", f"every instance ({int(present.sum()):,})", np.arange(total))]
    r = GRID_DIMS.index("replicate")
    if loss.shape[r] > 1:
        keep = tuple(a for a in range(loss.ndim) if a != r)
        tiers.append(("best replicate",
                      "the best replicate (lowest final loss) of every grid point",
                      np.unique(best_over_rest(loss, keep))))
    # every cell of every pair of axes but replicate, best over the rest: what the heat map
    # shows with the other selectors at "best" (a subset of the best replicates; pairs with
    # a length-1 axis add nothing new but cost nothing)
    axes = [a for a in range(loss.ndim) if a != r]
    views = [best_over_rest(loss, pair).ravel() for pair in combinations(axes, 2)]
    tiers.append(("best over the rest",
                  "for every pair of grid axes (replicate aside) and every cell of it, the best "
                  "instance over the other axes: what the heat map shows with every other "
                  "selector at 'best'",
                  np.unique(np.concatenate(views))))
    out: list[tuple[str, str, np.ndarray]] = []
    for t, d, f in tiers:
        f = np.sort(f[present[f]])
        if not out or not np.array_equal(out[-1][2], f):  # the same set twice: keep the first
            out.append((t, d, f))
    return out


def _instance_floats(run: Run) -> int:
    """float32 values stored per instance besides its loss curve."""
    n, m = run.n, run.m
    count = m * n + 2 * n  # W, norm, superposition
    if "W2" in run.ds:
        count += n * m
    if "b" in run.ds:
        count += n
    if "b1" in run.ds:
        count += m
    if m >= 3:
        count += 2 * n + 1  # the projection and the share of ||W||_F^2 it shows
    return count


def _curve_index(logs: int, points: int) -> np.ndarray:
    """Every k-th logged step and the last, at most about `points` of them."""
    if logs == 0 or points <= 0:
        return np.zeros(0, dtype=np.int64)
    stride = max(1, math.ceil(logs / points))
    return np.unique(np.r_[np.arange(0, logs, stride), logs - 1])


def choose_detail(run: Run, max_bytes: int) -> Detail:
    """The largest tier of detail_tiers whose weights and loss curves (at most
    MAX_CURVE_POINTS points each) fit in max_bytes, and in the room left the lowest-loss
    instances of the tier above it; when none fits, the last tier with
    shorter curves (down to MIN_CURVE_POINTS, then none), and when even its weights do not
    fit, its lowest-loss instances that do."""
    logs = run.ds.sizes["step"]
    per = 4 * _instance_floats(run)
    tiers = detail_tiers(run)
    full_curve = _curve_index(logs, MAX_CURVE_POINTS)
    each = per + 4 * len(full_curve)
    for i, (tier, desc, flat) in enumerate(tiers):
        size = len(flat) * each
        if size <= max_bytes:
            if i == 0:
                return Detail(flat, tier, desc, full_curve, size)
            # the room left: the lowest-loss instances of the tier above that are not in it
            others = np.setdiff1d(tiers[i - 1][2], flat)
            loss = _finite_loss(run).ravel()[others]
            extra = others[np.argsort(loss, kind="stable")[: (max_bytes - size) // each]]
            return Detail(np.sort(np.concatenate([flat, extra])), tier, desc, full_curve,
                          size + len(extra) * each, extra=len(extra))
    tier, desc, flat = tiers[-1]
    k = max(len(flat), 1)
    points = (max_bytes // k - per) // 4
    if points >= MIN_CURVE_POINTS:
        curve = _curve_index(logs, min(points, MAX_CURVE_POINTS))
        return Detail(flat, tier, desc, curve, len(flat) * (per + 4 * len(curve)))
    curve = np.zeros(0, dtype=np.int64)
    fit = max_bytes // per
    if fit >= len(flat):
        return Detail(flat, tier, desc, curve, len(flat) * per)
    loss = _finite_loss(run).ravel()[flat]
    kept = np.sort(flat[np.argsort(loss, kind="stable")[:fit]])
    return Detail(kept, tier, desc, curve, len(kept) * per, truncated=True)


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _fmt(v: float) -> str:
    return format(float(v), ".4g")


def _axes(run: Run) -> list[dict[str, Any]]:
    from .run import GRID_DIMS

    axes = []
    for d in GRID_DIMS:
        values = run.ds[d].values
        if d == "importance" and "importance_decay" not in run.spec["data"]:
            # explicit importance vectors: the coordinate is the vector's index
            rows = run.ds.feature_importance.values
            ticks = [("[" + ", ".join(_fmt(x) for x in row) + "]") if run.n <= 4 else f"#{k}"
                     for k, row in enumerate(rows)]
            label = "importance vector"
        else:
            ticks = [_fmt(v) for v in values]
            label = AXIS_LABELS[d] + (" (decay r: I_i = r^i)" if d == "importance" else "")
        axes.append({"name": d, "label": label, "values": [float(v) for v in values], "ticks": ticks})
    return axes


def _projection(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W (K, m, n) -> its columns projected onto W's two leading left singular vectors
    (K, 2, n), each direction's sign chosen so that its largest coordinate is positive, and
    the share of ||W||_F^2 the projection keeps (K,)."""
    U, S, _ = np.linalg.svd(W, full_matrices=False)
    P = np.swapaxes(U[..., :2], -1, -2) @ W
    big = np.take_along_axis(P, np.abs(P).argmax(axis=-1)[..., None], axis=-1)
    P = P * np.where(big < 0, -1.0, 1.0)
    total = (S * S).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, (S[..., :2] ** 2).sum(axis=-1) / total, 0.0)
    return P, share


def payload(run: Run, max_detail_bytes: int) -> dict[str, Any]:
    """Everything the page shows, as JSON-able data (arrays as base64 little-endian)."""
    from .run import GRID_DIMS

    ds = run.ds.transpose(*GRID_DIMS, ...)
    total = int(np.prod([ds.sizes[d] for d in GRID_DIMS]))
    n, m = run.n, run.m

    def flat(name: str) -> np.ndarray:
        a = ds[name].values
        return a.reshape((total,) + a.shape[len(GRID_DIMS):])

    summary = {
        "loss": _b64(flat("loss"), "<f8"),
        "loss_se": _b64(flat("loss_se"), "<f8"),
        "D_star": _b64(flat("D_star"), "<f4"),
        "n_represented": _b64(flat("n_represented"), "<f4"),
        "diverged_step": _b64(flat("diverged_step"), "<f4"),
        "diverged": _b64(flat("diverged"), "u1"),
        "instance": _b64(flat("instance"), "<i4"),
    }
    det = choose_detail(run, max_detail_bytes)
    k = det.flat
    detail: dict[str, Any] = {
        "tier": det.tier,
        "description": det.description,
        "truncated": det.truncated,
        "extra": int(det.extra),
        "count": int(len(k)),
        "bytes": int(det.bytes),
        "flat": _b64(k, "<i4"),
        "W": _b64(flat("W")[k], "<f4"),
        "norm": _b64(flat("norm")[k], "<f4"),
        "superposition": _b64(flat("superposition")[k], "<f4"),
        "curve_steps": [int(s) for s in ds.step.values[det.curve_index]],
        "curve": _b64(flat("train_loss")[k][:, det.curve_index], "<f4"),
    }
    if "W2" in ds:
        detail["W2"] = _b64(flat("W2")[k], "<f4")
    if "b" in ds:
        detail["b"] = _b64(flat("b")[k], "<f4")
    if "b1" in ds:
        detail["b1"] = _b64(flat("b1")[k], "<f4")
    if m >= 3:
        P, share = _projection(flat("W")[k])
        detail["projection"] = _b64(P, "<f4")
        detail["projection_share"] = _b64(share, "<f4")
    model = run.spec["model"]
    shard = run.manifest.get("shard", {})
    return {
        "name": str(run.spec.get("name", "")),
        "path": str(run.path),
        "n": n,
        "m": m,
        "model": model,
        "steps": int(run.spec["train"]["steps"]),
        "log_every": int(run.spec["train"]["log_every"]),
        "axes": _axes(run),
        "shape": [int(ds.sizes[d]) for d in GRID_DIMS],
        "total": total,
        "summary": summary,
        "detail": detail,
        "shard": {"index": int(shard.get("index", 0)), "count": int(shard.get("count", 1)),
                  "first_instance": int(shard.get("first_instance", 0)),
                  "instances": int(run.manifest.get("instances", total))},
        "manifest": run.manifest,
    }


# ----------------------------------------------------------------------------
# the figures' styles: plotly figures with empty data, validated by plotly here and
# filled by report.js


def figure_styles(run: Run) -> dict[str, Any]:
    import plotly.graph_objects as go

    font = dict(family="DejaVu Sans, Arial, sans-serif", size=12)
    base = dict(template="plotly_white", font=font, margin=dict(l=60, r=20, t=40, b=50))

    def fig(data: list[Any], **layout: Any) -> dict[str, Any]:
        f = go.Figure(data=data, layout=go.Layout(**{**base, **layout}))
        d: dict[str, Any] = json.loads(f.to_json())
        return d

    heat = fig([go.Heatmap(colorscale="Viridis", hoverongaps=False, xgap=1, ygap=1,
                           colorbar=dict(thickness=14))],
               height=520, margin=dict(l=110, r=20, t=40, b=90),
               xaxis=dict(tickmode="array", showgrid=False, zeroline=False),
               yaxis=dict(tickmode="array", showgrid=False, zeroline=False))
    geometry = fig([], height=360, showlegend=False,
                   xaxis=dict(zeroline=True, zerolinecolor="#999"),
                   yaxis=dict(zeroline=True, zerolinecolor="#999"))
    gram = fig([go.Heatmap(colorscale="RdBu", reversescale=True, zmid=0,
                           colorbar=dict(thickness=12))],
               height=360, xaxis=dict(title=dict(text="feature j"), constrain="domain"),
               yaxis=dict(title=dict(text="feature i"), autorange="reversed",
                          scaleanchor="x", constrain="domain"))
    norms = fig([go.Bar(marker=dict(colorscale="Viridis", cmin=0,
                                    colorbar=dict(thickness=12,
                                                  title=dict(text="superposition", side="right"))),
                        name="||W_i||")],
                height=300, xaxis=dict(title=dict(text="feature i")),
                yaxis=dict(title=dict(text="||W_i||")))
    bias = fig([go.Bar(marker=dict(color="#555"), name="b_i")], height=260,
               xaxis=dict(title=dict(text="feature i")), yaxis=dict(title=dict(text="b_i")))
    curve = fig([go.Scatter(mode="lines", name="training loss (batch)", line=dict(width=1.5)),
                 go.Scatter(mode="lines", name="final loss (fresh samples)",
                            line=dict(dash="dash", color="#e4002b"))],
                height=300, legend=dict(orientation="h", y=-0.3),
                xaxis=dict(title=dict(text="step")),
                yaxis=dict(type="log", title=dict(text="loss (mean over features)")))
    return {"heat": heat, "geometry": geometry, "gram": gram, "norms": norms, "bias": bias,
            "curve": curve}


# ----------------------------------------------------------------------------
# the page


def _script_json(obj: Any) -> str:
    """JSON safe inside <script>: no '</' can close the element."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render_html(run: Run, max_detail_mb: float = DEFAULT_MAX_DETAIL_MB) -> str:
    from plotly.offline import get_plotlyjs

    data = payload(run, int(max_detail_mb * 1024 * 1024))
    template = resources.files("tmslab").joinpath("report.html").read_text(encoding="utf-8")
    script = resources.files("tmslab").joinpath("report.js").read_text(encoding="utf-8")
    title = f"tms report: {data['name'] or run.path.name}"
    parts = {
        "<!--TITLE-->": title.replace("&", "&amp;").replace("<", "&lt;"),
        "/*PLOTLY_JS*/": get_plotlyjs(),
        "/*REPORT_DATA*/": _script_json(data),
        "/*REPORT_STYLES*/": _script_json(figure_styles(run)),
        "/*REPORT_JS*/": script,
    }
    out = template
    for marker, text in parts.items():
        if out.count(marker) != 1:
            raise RuntimeError(f"report.html: marker {marker} must appear once")
        head, tail = out.split(marker)
        out = head + text + tail
    return out


def write_report(rundir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                 max_detail_mb: float = DEFAULT_MAX_DETAIL_MB) -> Path:
    """Write the report of the run at `rundir` to `out` (default RUNDIR/report.html), whole
    or not at all (a temporary file renamed into place). Returns the path written."""
    from .run import RunError, load

    run = load(rundir)
    target = Path(out) if out is not None else run.path / "report.html"
    directory = target.parent
    if not directory.is_dir():
        raise RunError(f"--out {target}: the folder {directory} does not exist")
    if target.is_dir():
        raise RunError(f"--out {target}: is a folder (give the page's file name)")
    html = render_html(run, max_detail_mb)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise RunError(f"--out {target}: cannot write it: {e.strerror or e}") from e
    return target


def _positive_mb(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (MiB, > 0)") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of MiB > 0")
    return v


class _Once(argparse.Action):
    """A flag that takes one value and may be given once (a second is exit 2, as in tms)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if getattr(namespace, "_seen_" + self.dest, False):
            parser.error(f"{option_string} given twice (it takes one value)")
        setattr(namespace, "_seen_" + self.dest, True)
        setattr(namespace, self.dest, values)


def add_subcommand(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "report", help="write a self-contained HTML page exploring a run or a merged sweep",
        description="Write one HTML page (offline: plotly.js embedded) with the run's grid as "
                    "a heat map, each instance's geometry, W^T W, norms and loss curve, and "
                    "the manifest.")
    p.add_argument("rundir", metavar="RUNDIR")
    p.add_argument("--out", metavar="FILE", action=_Once, help="the page to write (default RUNDIR/report.html)")
    p.add_argument("--max-detail-mb", metavar="MB", type=_positive_mb, action=_Once, default=DEFAULT_MAX_DETAIL_MB,
                   help="budget for the per-instance weights and loss curves in the page, in MiB "
                        f"(default {DEFAULT_MAX_DETAIL_MB:g}); every instance's summary is always in")

    def run(args: argparse.Namespace) -> int:
        target = write_report(args.rundir, args.out, args.max_detail_mb)
        print(f"report: wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
        return 0

    p.set_defaults(func=run)
