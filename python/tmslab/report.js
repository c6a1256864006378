// report.js: the glue of a tms report page (python/tmslab/report.py puts it into report.html).
// It decodes the embedded data, fills the selectors, finds each heat-map cell's best instance
// and draws the selected instance with plotly; the figures' styles come from report.py
// (plotly figures with empty data). Everything it draws is a number report.py put in, except
// W^T W and W2 W, multiplied here from the weights.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const STYLE = JSON.parse(document.getElementById("report-styles").textContent);
  const CONFIG = { displaylogo: false, responsive: true };  // the heat map's
  const SMALL = { displaylogo: false, responsive: true, displayModeBar: false };  // the instance's
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function decode(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return String(v);
    return Number(v).toPrecision(5).replace(/\.?0+(e|$)/, "$1");
  }
  function style(name) { return JSON.parse(JSON.stringify(STYLE[name])); }
  function el(id) { return document.getElementById(id); }

  const n = D.n, m = D.m, shape = D.shape, total = D.total, axes = D.axes;
  const A = axes.length;
  const strides = new Array(A);
  for (let a = A - 1, s = 1; a >= 0; a--) { strides[a] = s; s *= shape[a]; }
  function coords(g) { return axes.map((_, a) => Math.floor(g / strides[a]) % shape[a]); }

  const loss = decode(D.summary.loss, Float64Array);
  const lossSe = decode(D.summary.loss_se, Float64Array);
  const dStar = decode(D.summary.D_star, Float32Array);
  const nRep = decode(D.summary.n_represented, Float32Array);
  const divStep = decode(D.summary.diverged_step, Float32Array);
  const diverged = decode(D.summary.diverged, Uint8Array);
  const instance = decode(D.summary.instance, Int32Array);

  const det = D.detail;
  const detFlat = decode(det.flat, Int32Array);
  const dW = decode(det.W, Float32Array);
  const dNorm = decode(det.norm, Float32Array);
  const dSup = decode(det.superposition, Float32Array);
  const dCurve = decode(det.curve, Float32Array);
  const dW2 = det.W2 ? decode(det.W2, Float32Array) : null;
  const dB = det.b ? decode(det.b, Float32Array) : null;
  const dB1 = det.b1 ? decode(det.b1, Float32Array) : null;
  const dProj = det.projection ? decode(det.projection, Float32Array) : null;
  const dShare = det.projection_share ? decode(det.projection_share, Float32Array) : null;
  const L = det.curve_steps.length;
  const rowOf = new Int32Array(total).fill(-1);
  for (let r = 0; r < det.count; r++) rowOf[detFlat[r]] = r;

  const METRICS = [
    ["loss", "final loss (mean over features)", g => loss[g]],
    ["log10_loss", "log10 of the final loss", g => Math.log10(loss[g])],
    ["loss_sum", "final loss, summed over features (the paper's)", g => n * loss[g]],
    ["D_star", "D* = m / ||W||_F^2 (dimensions per feature)", g => dStar[g]],
    ["n_represented", "represented features (||W_i|| > 0.5)", g => nRep[g]],
    ["loss_se", "standard error of the final loss", g => lossSe[g]],
    ["diverged", "diverged (1) or not (0)", g => diverged[g]],
  ];

  // ---- header
  const model = D.model;
  el("title").textContent = "tms report: " + (D.name || D.path);
  const gridText = axes.map((ax, a) => shape[a] > 1 ? `${ax.name} ${shape[a]}` : `${ax.name} = ${ax.ticks[0]}`);
  el("what").textContent =
    `${n} features -> ${m} hidden; decoder ${model.decoder}, hidden ${model.hidden_activation}, ` +
    `output ${model.output_activation}, bias ${model.bias}. ${total.toLocaleString("en-US")} instances: ` +
    `${gridText.join(", ")}. ${D.steps} steps; ${D.path}` + (D.shard.count > 1
      ? `. Shard ${D.shard.index} of ${D.shard.count}: instances ${D.shard.first_instance} to ` +
        `${D.shard.first_instance + D.shard.instances - 1} only` : "");
  el("included").textContent =
    `This page holds the final loss, its standard error, D*, the represented features and ` +
    `divergence of all ${total.toLocaleString("en-US")} instances, and the weights, feature norms, ` +
    `superposition and training-loss curve (${L} of the logged points, every ` +
    `${L > 1 ? det.curve_steps[1] - det.curve_steps[0] : "-"} steps) of ` +
    `${det.count.toLocaleString("en-US")} of them (${(det.bytes / 1048576).toFixed(1)} MiB): ` +
    `${det.description}${det.truncated ? ", cut to the lowest-loss ones that fit the budget" : ""}` +
    `${det.extra ? `, and the ${det.extra.toLocaleString("en-US")} lowest-loss others that fit the budget` : ""}. ` +
    `Others show their summary only: tmslab.load(RUNDIR) has everything, and ` +
    `python -m tmslab report --max-detail-mb raises the budget.`;
  el("manifest").textContent = JSON.stringify(D.manifest, null, 1);

  // ---- selectors
  function option(sel, value, text) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text; sel.appendChild(o);
  }
  METRICS.forEach((mt, i) => option(el("metric"), i, mt[1]));
  el("metric").value = "1";  // log10 of the loss: the loss spans decades over a phase diagram
  const varying = axes.map((_, a) => a).filter(a => shape[a] > 1 && axes[a].name !== "replicate");
  const choices = varying.slice();
  for (let a = 0; a < A && choices.length < 2; a++) if (!choices.includes(a)) choices.push(a);
  for (let a = 0; a < A; a++) if (!choices.includes(a) && shape[a] > 1) choices.push(a);
  choices.forEach(a => { option(el("xaxis"), a, axes[a].name); option(el("yaxis"), a, axes[a].name); });
  // the paper's phase diagrams: the faster-varying axis across, density (slowest) up
  el("xaxis").value = String(choices[1]);
  el("yaxis").value = String(choices[0]);
  const fixSel = axes.map((ax, a) => {
    const label = document.createElement("label");
    label.textContent = ax.name + " ";
    const sel = document.createElement("select");
    sel.id = "fix-" + ax.name;
    if (shape[a] > 1) option(sel, "best", "best");
    ax.ticks.forEach((t, i) => option(sel, String(i), t));
    label.appendChild(sel);
    el("fixed").appendChild(label);
    sel.addEventListener("change", drawHeat);
    return sel;
  });

  // ---- the heat map: per cell, the lowest-loss instance (NaN counts as +inf, ties: the
  // first in grid order) among those the fixed selectors allow
  const heat = { xa: 0, ya: 0, nx: 1, ny: 1, arg: null, metric: 0 };
  function computeHeat() {
    let xa = +el("xaxis").value, ya = +el("yaxis").value;
    if (xa === ya) {  // one axis twice: take the other listed one for y
      ya = choices.find(a => a !== xa);
      el("yaxis").value = String(ya);
    }
    const nx = shape[xa], ny = shape[ya];
    const fixed = fixSel.map(s => (s.value === "best" ? -1 : +s.value));
    const best = new Float64Array(nx * ny).fill(Infinity);
    const arg = new Int32Array(nx * ny).fill(-1);
    for (let g = 0; g < total; g++) {
      let ok = true, cx = 0, cy = 0;
      for (let a = 0; a < A; a++) {
        const c = Math.floor(g / strides[a]) % shape[a];
        if (a === xa) cx = c;
        else if (a === ya) cy = c;
        else if (fixed[a] >= 0 && c !== fixed[a]) { ok = false; break; }
      }
      if (!ok) continue;
      const cell = cy * nx + cx;
      const l = Number.isNaN(loss[g]) ? Infinity : loss[g];
      if (arg[cell] < 0 || l < best[cell]) { best[cell] = l; arg[cell] = g; }
    }
    Object.assign(heat, { xa, ya, nx, ny, arg, fixed, metric: +el("metric").value });
  }
  function ticks(a, count) {
    const every = Math.max(1, Math.ceil(count / 24));
    const vals = [], text = [];
    for (let i = 0; i < count; i += every) { vals.push(i); text.push(axes[a].ticks[i]); }
    return { tickvals: vals, ticktext: text };
  }
  function drawHeat() {
    computeHeat();
    const { xa, ya, nx, ny, arg } = heat;
    const [, mlabel, get] = METRICS[heat.metric];
    const z = [], text = [];
    let lo = Infinity, hi = -Infinity;
    for (let y = 0; y < ny; y++) {
      const zr = [], tr = [];
      for (let x = 0; x < nx; x++) {
        const g = arg[y * nx + x];
        const v = g >= 0 ? get(g) : NaN;
        const ok = Number.isFinite(v);
        zr.push(ok ? v : null);
        if (ok) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        tr.push(`${instance[g] >= 0 ? "instance " + instance[g] : "not in this shard"}<br>${axes[xa].name} ${axes[xa].ticks[x]}, ` +
                `${axes[ya].name} ${axes[ya].ticks[y]}<br>${mlabel}: ${fmt(v)}`);
      }
      z.push(zr); text.push(tr);
    }
    if (!(lo <= hi)) { lo = 0; hi = 1; }
    const fig = style("heat");
    Object.assign(fig.data[0], {
      x: [...Array(nx).keys()], y: [...Array(ny).keys()], z, text, hoverinfo: "text",
      zmin: lo, zmax: hi > lo ? hi : lo + 1,
      xgap: nx > 40 ? 0 : 1, ygap: ny > 40 ? 0 : 1,  // gaps between many cells only blur
    });
    fig.data[0].colorbar.title = { text: METRICS[heat.metric][0], side: "right" };
    const rest = axes.filter((ax, a) => a !== xa && a !== ya && shape[a] > 1 && heat.fixed[a] < 0)
                     .map(ax => ax.name);
    fig.layout.title = { text: mlabel, font: { size: 14 } };
    Object.assign(fig.layout.xaxis, ticks(xa, nx), { title: { text: axes[xa].label },
                  range: [-0.5, nx - 0.5] });
    Object.assign(fig.layout.yaxis, ticks(ya, ny), { title: { text: axes[ya].label },
                  range: [-0.5, ny - 0.5] });
    fig.layout.shapes = selectedShape();
    Plotly.react("heat", fig.data, fig.layout, CONFIG);
    el("heat-note").textContent = rest.length
      ? `Each cell: the instance with the lowest final loss over ${rest.join(", ")}. Click a cell to see it.`
      : "Each cell is one instance. Click a cell to see it.";
    markSelected();
  }
  // the selected instance's cell, outlined (a layout shape: redrawn alone, the map is not)
  function selectedShape() {
    const cell = state.g >= 0 && heat.arg ? heat.arg.indexOf(state.g) : -1;
    if (cell < 0) return [];
    const x = cell % heat.nx, y = Math.floor(cell / heat.nx);
    return [{ type: "rect", xref: "x", yref: "y", x0: x - 0.5, x1: x + 0.5, y0: y - 0.5, y1: y + 0.5,
              line: { color: "#e4002b", width: 2.5 } }];
  }
  function markSelected() { Plotly.relayout("heat", { shapes: selectedShape() }); }
  ["metric", "xaxis", "yaxis"].forEach(id => el(id).addEventListener("change", drawHeat));

  // ---- the selected instance
  const state = { g: -1, row: -1 };
  function show(id, on) { el(id).style.display = on ? "" : "none"; if (!on) Plotly.purge(id); }
  function featureTicks() {
    const every = Math.max(1, Math.ceil(n / 20));
    const vals = [];
    for (let i = 0; i < n; i += every) vals.push(i);
    return { tickmode: "array", tickvals: vals, ticktext: vals.map(String) };
  }
  function drawGeometry(r) {
    const fig = style("geometry");
    let X, Y, title, xt, yt;
    if (m === 1) {
      X = Array.from(dW.subarray(r * n, r * n + n)); Y = [...Array(n).keys()];
      title = "W_i on the one hidden dimension (a row per feature)";
      xt = "W_i"; yt = "feature i";
      fig.layout.yaxis = Object.assign(fig.layout.yaxis, featureTicks(), { autorange: "reversed" });
    } else {
      const src = m === 2 ? dW : dProj, off = r * 2 * n;
      X = Array.from(src.subarray(off, off + n)); Y = Array.from(src.subarray(off + n, off + 2 * n));
      if (m === 2) { title = "columns W_i of W in the hidden plane"; xt = "hidden 0"; yt = "hidden 1"; }
      else {
        title = `W_i projected on W's two leading singular directions (${(100 * dShare[r]).toFixed(1)}% of ||W||_F^2)`;
        xt = "singular direction 1"; yt = "singular direction 2";
      }
      const lim = 1.15 * Math.max(0.1, ...X.map(Math.abs), ...Y.map(Math.abs));
      fig.layout.xaxis.range = [-lim, lim]; fig.layout.yaxis.range = [-lim, lim];
      fig.layout.yaxis.scaleanchor = "x";
    }
    const colour = i => PALETTE[i % PALETTE.length];
    fig.layout.annotations = X.map((x, i) => ({
      x, y: Y[i], ax: 0, ay: m === 1 ? Y[i] : 0, xref: "x", yref: "y", axref: "x", ayref: "y",
      showarrow: true, arrowhead: 2, arrowsize: 1, arrowwidth: 2, arrowcolor: colour(i), text: "",
    }));
    fig.data = [{
      type: "scatter", mode: n <= 30 ? "markers+text" : "markers", x: X, y: Y,
      text: X.map((_, i) => String(i)), textposition: "top right",
      marker: { size: 6, color: X.map((_, i) => colour(i)) },
      hovertext: X.map((x, i) => `feature ${i}: (${fmt(x)}${m === 1 ? "" : ", " + fmt(Y[i])}), ` +
                                  `||W_i|| ${fmt(dNorm[r * n + i])}`),
      hoverinfo: "text",
    }];
    fig.layout.title = { text: title, font: { size: 13 } };
    fig.layout.xaxis.title = { text: xt }; fig.layout.yaxis.title = { text: yt };
    Plotly.react("geometry", fig.data, fig.layout, SMALL);
  }
  function drawMatrix(id, M, title) {
    let a = 0;
    for (const row of M) for (const v of row) a = Math.max(a, Math.abs(v));
    if (!(a > 0)) a = 1;
    const fig = style("gram");
    Object.assign(fig.data[0], { z: M, zmin: -a, zmax: a,
      hovertemplate: "i %{y}, j %{x}: %{z:.4g}<extra></extra>" });
    fig.layout.title = { text: `${title}, colour range ±${fmt(a)} (its largest |entry|)`, font: { size: 13 } };
    Object.assign(fig.layout.xaxis, featureTicks()); Object.assign(fig.layout.yaxis, featureTicks());
    Plotly.react(id, fig.data, fig.layout, SMALL);
  }
  function drawInstance(r) {
    const W = dW.subarray(r * m * n, (r + 1) * m * n);  // (m, n) row-major
    drawGeometry(r);
    const G = [];
    for (let i = 0; i < n; i++) {
      const row = new Array(n).fill(0);
      for (let j = 0; j < n; j++) { let s = 0; for (let h = 0; h < m; h++) s += W[h * n + i] * W[h * n + j]; row[j] = s; }
      G.push(row);
    }
    drawMatrix("gram", G, "W^T W");
    show("gram2", !!dW2);
    if (dW2) {
      const W2 = dW2.subarray(r * n * m, (r + 1) * n * m);  // (n, m)
      const M = [];
      for (let i = 0; i < n; i++) {
        const row = new Array(n).fill(0);
        for (let j = 0; j < n; j++) { let s = 0; for (let h = 0; h < m; h++) s += W2[i * m + h] * W[h * n + j]; row[j] = s; }
        M.push(row);
      }
      drawMatrix("gram2", M, "W2 W (input j to output i)");
    }
    const norms = style("norms");
    const sup = Array.from(dSup.subarray(r * n, (r + 1) * n));
    Object.assign(norms.data[0], { x: [...Array(n).keys()], y: Array.from(dNorm.subarray(r * n, (r + 1) * n)),
      customdata: sup, hovertemplate: "feature %{x}: ||W_i|| %{y:.4g}, superposition %{customdata:.4g}<extra></extra>" });
    Object.assign(norms.data[0].marker, { color: sup, cmax: Math.max(1e-6, ...sup.filter(Number.isFinite)) });
    norms.layout.title = { text: "feature norms ||W_i||, coloured by superposition", font: { size: 13 } };
    Object.assign(norms.layout.xaxis, featureTicks());
    Plotly.react("norms", norms.data, norms.layout, SMALL);
    show("bias", !!dB);
    if (dB) {
      const bias = style("bias");
      Object.assign(bias.data[0], { x: [...Array(n).keys()], y: Array.from(dB.subarray(r * n, (r + 1) * n)) });
      bias.layout.title = { text: "output bias b_i", font: { size: 13 } };
      Object.assign(bias.layout.xaxis, featureTicks());
      Plotly.react("bias", bias.data, bias.layout, SMALL);
    }
    show("curve", L > 0);
    if (L > 0) {
      const curve = style("curve");
      const g = detFlat[r];
      Object.assign(curve.data[0], { x: det.curve_steps, y: Array.from(dCurve.subarray(r * L, (r + 1) * L)) });
      Object.assign(curve.data[1], { x: [det.curve_steps[0], D.steps], y: [loss[g], loss[g]] });
      curve.layout.title = { text: `training loss, every ${L > 1 ? det.curve_steps[1] - det.curve_steps[0] : 1} steps`, font: { size: 13 } };
      Plotly.react("curve", curve.data, curve.layout, SMALL);
    }
  }
  function select(g) {
    const r = rowOf[g];
    Object.assign(state, { g, row: r });
    const c = coords(g);
    const absent = instance[g] < 0;
    el("instance-title").textContent = (absent ? "not in this shard: " : `instance ${instance[g]}: `) +
      axes.map((ax, a) => `${ax.name} ${ax.ticks[c[a]]}`).join(", ");
    const rows = [
      ["final loss (mean over features)", `${fmt(loss[g])} ± ${fmt(lossSe[g])}`],
      ["final loss summed over features", fmt(n * loss[g])],
      ["D* (dimensions per feature)", fmt(dStar[g])],
      ["represented features", fmt(nRep[g])],
      ["diverged", diverged[g] ? `yes${Number.isNaN(divStep[g]) ? "" : " at step " + divStep[g]}` : "no"],
    ];
    if (r >= 0 && dB1) rows.push(["hidden bias b1", Array.from(dB1.subarray(r * m, (r + 1) * m)).map(fmt).join(", ")]);
    const tb = el("numbers");
    tb.replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement("tr");
      for (const t of [k, v]) { const td = document.createElement("td"); td.textContent = t; tr.appendChild(td); }
      return tr;
    }));
    const have = r >= 0;
    el("missing").textContent = have ? "" : absent
      ? "Another shard trained this grid point: tms merge the shards and report the merged run to see it."
      : "This instance's weights and loss curve are not in this page (see the note at the top); " +
        "its numbers above are.";
    for (const id of ["geometry", "gram", "norms"]) show(id, have);
    if (have) drawInstance(r);
    else for (const id of ["gram2", "bias", "curve"]) show(id, false);
    if (heat.arg) markSelected();
  }

  drawHeat();
  el("heat").on("plotly_click", ev => {
    const p = ev.points && ev.points[0];
    if (!p || p.curveNumber !== 0) return;
    const g = heat.arg[p.y * heat.nx + p.x];
    if (g >= 0) select(g);
  });
  // start on the best cell of the heat map
  let first = -1, lbest = Infinity;
  for (const g of heat.arg) if (g >= 0 && (first < 0 || loss[g] < lbest)) { first = g; lbest = loss[g]; }
  if (first >= 0) select(first);
  window.tmsReport = {
    select, state, heat, rowOf, ready: true,
    detail: { tier: det.tier, count: det.count, extra: det.extra, bytes: det.bytes, curve_points: L, total },
  };
})();
