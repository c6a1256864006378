#!/usr/bin/env python3
"""bench_fused.py: the fused CUDA path (issue 12) against everything it should beat.

Driven by bench_fused.sh; run it directly for the options:
    python3 experiments/bench/bench_fused.py --tms build-gpu/tms --floor build-gpu/fused_floor
    python3 experiments/bench/bench_fused.py --smoke-peers      # the Python peers on the CPU, tiny

Workloads (batch 1024, AdamW lr 1e-3, weight decay 0.01, constant lr; fp32 everywhere):
    A      1,000 instances of 5 -> 2 (tied, output ReLU, bias), density 0.05, 10,000 steps
    phase  the phase diagram of experiments/specs/phase_2_1.json: 2 -> 1, 11 densities x 11
           importance ratios x 3 seeds = 363 instances, 10,000 steps
Implementations, interleaved repetition by repetition (--reps, default 3), medians reported:
    tms fused      tms train --backend cuda --cuda-path fused   (manifest wall_seconds)
    tms gemm       tms train --backend cuda --cuda-path gemm    (the cuBLAS path)
    torch eager    torch_peer.py --device cuda                  (the notebook's recipe)
    torch.compile  torch_peer.py --device cuda --compile        (first step = compilation, inside wall)
    jax            jax_peer.py --device gpu                     (jit + vmap + lax.scan; compile outside wall)
    philox floor   fused_floor: the same Philox numbers generated and summed, nothing else
The table's last columns: each row's wall over the fused path's (above 1: fused is that many
times faster), and the fused path's wall over the floor's (the issue's target: within 3x).
Targets (issue 12, workload A on an H100): fused >= 5x the gemm path, >= 50x torch eager,
<= 3x the floor.

Results: experiments/bench/RESULTS_fused.md (and .json with every repetition), with the GPU,
driver, date and commit. Without an NVIDIA GPU it measures nothing and exits 77.
Only the standard library here; the peers need torch / jax in --python.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the shared helpers: run_logged, write_atomic, git_commit, sh)

TORCH_PEER = os.path.join(HERE, "torch_peer.py")
JAX_PEER = os.path.join(HERE, "jax_peer.py")
PHASE_SPEC = os.path.join(ROOT, "experiments", "specs", "phase_2_1.json")


def workload_a(steps):
    spec = bench.gpu_spec("A", "tied", 5, 2, 1000, steps)
    peer = {"n": 5, "m": 2, "instances": 1000, "density": [0.05] * 1000, "importances": None}
    return spec, peer


def workload_phase(steps):
    with open(PHASE_SPEC) as f:
        spec = json.load(f)
    spec["train"]["steps"] = steps
    spec["train"]["log_every"] = steps
    spec["data"]["batch_size"] = 1024
    spec["output"] = {"images": False}
    d, imp, seeds = spec["data"]["density"], spec["data"]["importance"], int(spec["train"].get("seeds", 1))
    # per instance, for the peers: every (density, importance) point times the seeds (the
    # loss columns are a sanity check only; the timing does not depend on the order)
    dens = [float(x) for x in d for _ in imp for _ in range(seeds)]
    ratios = [float(p[1]) / float(p[0]) for _ in d for p in imp for _ in range(seeds)]
    peer = {"n": 2, "m": 1, "instances": len(dens), "density": dens, "importances": ratios}
    return spec, peer


def peer_cmd(python, script, peer, steps, device, extra):
    cmd = [python, script, "--json", "--device", device, "--instances", str(peer["instances"]),
           "--n", str(peer["n"]), "--m", str(peer["m"]), "--steps", str(steps), "--batch", "1024",
           "--densities", ",".join(repr(x) for x in peer["density"])]
    if peer["importances"]:
        cmd += ["--importances", ",".join(repr(x) for x in peer["importances"])]
    return cmd + extra


def run_peer(cmd, log, timeout):
    proc, elapsed, err = bench.run_logged(cmd, log, timeout)
    if err:
        return {"error": err}
    try:
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "no JSON line on stdout (log: %s)" % log}
    return {"wall_seconds": r["wall_seconds"], "process_seconds": elapsed,
            "compile_seconds": r.get("compile_seconds", r.get("first_step_seconds")),
            "loss_mean_features": r.get("final_loss_mean_features"), "device": r.get("device_name")}


def run_tms(tms, spec_path, run_dir, path, timeout):
    cmd = [tms, "train", spec_path, "--out", run_dir, "--backend", "cuda", "--cuda-path", path, "--quiet"]
    proc, elapsed, err = bench.run_logged(cmd, run_dir + ".log", timeout)
    if err:
        return {"error": err}
    try:
        with open(os.path.join(run_dir, "manifest.json")) as f:
            man = json.load(f)
        if man.get("cuda_path") != path:
            return {"error": "the manifest says cuda_path %r, asked for %r" % (man.get("cuda_path"), path)}
        import csv
        with open(os.path.join(run_dir, "instances.csv")) as f:
            losses = [float(row["loss_mean_features"]) for row in csv.DictReader(f)]
        return {"wall_seconds": float(man["wall_seconds"]), "process_seconds": elapsed,
                "loss_mean_features": sum(losses) / len(losses), "device": man.get("device")}
    except (OSError, KeyError, ValueError) as e:
        return {"error": "cannot read %s: %s" % (run_dir, e)}


def run_floor(floor, peer, steps, log, timeout):
    cmd = [floor, str(peer["instances"]), str(peer["n"]), str(peer["m"]), "1024", str(steps), "0.05"]
    proc, elapsed, err = bench.run_logged(cmd, log, timeout)
    if err:
        return {"error": err}
    try:
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "no JSON line (log: %s)" % log}
    if abs(r["mean_value"] - r["expected_mean_value"]) > 0.01 * r["expected_mean_value"]:
        return {"error": "the floor's numbers have the wrong mean %g (expected %g)" % (r["mean_value"],
                                                                                   r["expected_mean_value"])}
    return {"wall_seconds": r["wall_seconds"], "process_seconds": elapsed, "device": r.get("device_name")}


def table(rows):
    out = ["| workload | impl | wall s (median) | min..max | compile s | loss_mean_features | wall / fused wall |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    fused, floor = {}, {}
    for row in rows:
        ok = [r for r in row["reps"] if "error" not in r]
        if ok and row["impl"] == "tms fused":
            fused[row["workload"]] = statistics.median(r["wall_seconds"] for r in ok)
        if ok and row["impl"] == "philox floor":
            floor[row["workload"]] = statistics.median(r["wall_seconds"] for r in ok)
    for row in rows:
        ok = [r for r in row["reps"] if "error" not in r]
        if not ok:
            err = row["reps"][0]["error"] if row["reps"] else "not run"
            out.append("| %s | %s | failed: %s | | | | |" % (row["workload"], row["impl"], err.replace("|", "/")))
            continue
        walls = [r["wall_seconds"] for r in ok]
        wall = statistics.median(walls)
        comp = [r["compile_seconds"] for r in ok if r.get("compile_seconds") is not None]
        loss = [r["loss_mean_features"] for r in ok if r.get("loss_mean_features") is not None]
        ratio = "%.2f" % (wall / fused[row["workload"]]) if row["workload"] in fused else "n/a"
        out.append("| %s | %s | %.3f | %.3f..%.3f | %s | %s | %s |" % (
            row["workload"], row["impl"], wall, min(walls), max(walls),
            "%.1f" % statistics.median(comp) if comp else "", "%.5f" % statistics.median(loss) if loss else "",
            ratio))
    for w in fused:
        if w in floor:
            out.append("")
            out.append("%s: fused wall / Philox floor wall = %.2f (target: at most 3)" % (w, fused[w] / floor[w]))
    return out


def smoke_peers(python):
    """The Python peers on the CPU at tiny sizes: they run, and print their JSON line."""
    failed = 0
    for name, script, extra in (("torch", TORCH_PEER, ["--threads", "1"]), ("jax", JAX_PEER, ["--chunk", "10"])):
        mod = "torch" if name == "torch" else "jax"
        if subprocess.run([python, "-c", "import " + mod], capture_output=True).returncode != 0:
            print("bench_fused --smoke-peers: %s is not importable in %s: the %s peer not run" % (mod, python, name))
            continue
        peer = {"n": 2, "m": 1, "instances": 3, "density": [1.0, 0.3, 0.1], "importances": [0.5, 1.0, 2.0]}
        cmd = peer_cmd(python, script, peer, 20, "cpu", extra) + ["--batch", "64"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        ok = proc.returncode == 0 and proc.stdout.strip().startswith("{")
        print("bench_fused --smoke-peers: %s peer on the CPU: %s" % (name, "ran" if ok else "FAILED"))
        if not ok:
            print(proc.stderr[-2000:])
            failed += 1
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tms", help="a tms built with CUDA")
    ap.add_argument("--floor", help="the fused_floor binary (built beside tms)")
    ap.add_argument("--python", default=sys.executable, help="the Python with torch / jax for the peers")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="steps / 10, results in /tmp")
    ap.add_argument("--only", default="A,phase", help="comma-separated workloads (A, phase)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--results", default=None, help="the Markdown results file")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per run")
    ap.add_argument("--smoke-peers", action="store_true", help="only run the Python peers on the CPU, tiny")
    a = ap.parse_args()
    if a.smoke_peers:
        return smoke_peers(a.python)
    smi = bench.sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], "")
    if not smi:
        print("bench_fused: no NVIDIA GPU here (nvidia-smi finds none): nothing measured. Run it on a GPU "
              "machine (the GPU verification, issue 11); `--smoke-peers` runs the Python peers on the CPU.")
        return 77
    if not a.tms or not a.floor:
        ap.error("--tms and --floor are required")
    steps = 1000 if a.quick else 10000
    results = a.results or (os.path.join(tempfile.gettempdir(), "RESULTS_fused_quick.md") if a.quick
                            else os.path.join(HERE, "RESULTS_fused.md"))
    work = tempfile.mkdtemp(prefix="bench_fused_")
    makers = {"A": workload_a, "phase": workload_phase}
    rows = []
    for w in [x.strip() for x in a.only.split(",") if x.strip()]:
        if w not in makers:
            ap.error("--only: unknown workload %r (A, phase)" % w)
        spec, peer = makers[w](steps)
        spec_path = os.path.join(work, "%s.json" % w)
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        impls = [("tms fused", lambda r, sp=spec_path, w=w: run_tms(a.tms, sp, os.path.join(work, "%s_fused_%d" % (w, r)),
                                                                     "fused", a.timeout)),
                 ("tms gemm", lambda r, sp=spec_path, w=w: run_tms(a.tms, sp, os.path.join(work, "%s_gemm_%d" % (w, r)),
                                                                    "gemm", a.timeout)),
                 ("philox floor", lambda r, p=peer, w=w: run_floor(a.floor, p, steps,
                                                                   os.path.join(work, "%s_floor_%d.log" % (w, r)),
                                                                   a.timeout))]
        if not a.no_torch:
            impls.append(("torch eager", lambda r, p=peer, w=w: run_peer(
                peer_cmd(a.python, TORCH_PEER, p, steps, "cuda", []), os.path.join(work, "%s_torch_%d.log" % (w, r)),
                a.timeout)))
            if not a.no_compile:
                impls.append(("torch.compile", lambda r, p=peer, w=w: run_peer(
                    peer_cmd(a.python, TORCH_PEER, p, steps, "cuda", ["--compile"]),
                    os.path.join(work, "%s_compile_%d.log" % (w, r)), a.timeout)))
        if not a.no_jax:
            impls.append(("jax (jit+vmap+scan)", lambda r, p=peer, w=w: run_peer(
                peer_cmd(a.python, JAX_PEER, p, steps, "gpu", []), os.path.join(work, "%s_jax_%d.log" % (w, r)),
                a.timeout)))
        these = [{"workload": w, "impl": name, "steps": steps, "reps": []} for name, _ in impls]
        for r in range(a.reps):  # interleaved: one repetition of each, then the next
            for row, (name, fn) in zip(these, impls):
                res = fn(r)
                row["reps"].append(res)
                print("%s %s rep %d: %s" % (w, name, r, res.get("error") or "%.3f s" % res["wall_seconds"]),
                      flush=True)
        rows += these
    lines = ["# The fused CUDA path against the gemm path, the peers and the Philox floor", "",
             "- written by experiments/bench/bench_fused.sh, %s UTC" % datetime.datetime.utcnow().strftime(
                 "%Y-%m-%d %H:%M"),
             "- GPU (nvidia-smi name, driver, memory): %s; host CPU: %s" % (smi, bench.cpu_model()),
             "- tms commit: %s; peers' Python: %s; %d steps, batch 1024, %d repetitions, medians" % (
                 bench.git_commit(), a.python, steps, a.reps), ""] + table(rows)
    text = "\n".join(lines) + "\n"
    bench.write_atomic(results, text)
    bench.write_atomic(os.path.splitext(results)[0] + ".json", json.dumps(rows, indent=1) + "\n")
    print(text)
    failed = any("error" in r for row in rows for r in row["reps"])
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("bench_fused: some runs failed; their logs are in %s" % work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
