#!/usr/bin/env python3
"""bench.py: tms against the PyTorch peer (torch_peer.py), same workload, same machine.

Driven by bench_cpu.sh and bench_gpu.sh; run it directly for the options:
    python3 experiments/bench/bench.py cpu [--reps 3] [--steps N] [--threads N] ...
    python3 experiments/bench/bench.py gpu [--quick] [--only A,B-untied] [--no-compile] ...

For each workload it runs tms (`tms train SPEC --out RUNDIR --backend ...`) and the
peer, interleaved, --reps times, and reports the median. "wall" is each program's
own clock around its training loop: tms's manifest.json wall_seconds, the peer's
perf_counter around its loop (synchronised on CUDA). "process" is the wall time
of the whole command as seen from here (start-up, imports, output included).
ratio = peer wall / tms wall: above 1, tms is that many times faster.

Results go to a Markdown file (written atomically) and a JSON file beside it with
every repetition, and the Markdown is printed. This script needs only the
standard library; the peer needs torch in the interpreter given by --python.
"""

import argparse
import csv
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER = os.path.join(HERE, "torch_peer.py")

# GPU workloads: name -> (n, m, instances, steps at full size)
GPU_WORKLOADS = {
    "A": (5, 2, 1000, 10000),
    "B": (100, 20, 100, 10000),
    "C": (1000, 100, 16, 1000),
}
GPU_DENSITY = 0.05
GPU_IMPORTANCE_DECAY = 1.0
BATCH = 1024


# ----------------------------------------------------------------------------
# machine and version facts

def sh(cmd, default="unknown"):
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else default
    except (OSError, subprocess.SubprocessError):
        return default


def git_commit():
    commit = sh(["git", "rev-parse", "--short", "HEAD"], default="")
    if not commit:
        return "no commit (git rev-parse HEAD failed)"
    dirty = sh(["git", "status", "--porcelain"], default="")
    return commit + ("-dirty" if dirty else "")


def cpu_model():
    for line in sh(["lscpu"], default="").splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def torch_facts(python):
    code = ("import json, torch; print(json.dumps({'version': torch.__version__, "
            "'compile': hasattr(torch, 'compile'), 'cuda': torch.cuda.is_available(), "
            "'cuda_device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        sys.exit("bench: %s cannot import torch; pass --python with an interpreter that has it "
                 "(Debian: apt-get install python3-torch, then --python /usr/bin/python3)" % python)


# ----------------------------------------------------------------------------
# specs

def spec_instances_and_densities(spec):
    """The peer's per-instance densities for a tms spec, in tms's grid order
    (density slowest, replicate fastest). Only the axes the peer can mirror."""
    data, opt, train = spec["data"], spec.get("optimizer", {}), spec.get("train", {})
    density = data.get("density", 1.0)
    densities = density if isinstance(density, list) else [density]
    for section, key in (("optimizer", "lr"), ("optimizer", "weight_decay"), ("train", "seed"),
                         ("data", "importance_decay")):
        if isinstance(spec.get(section, {}).get(key), list):
            sys.exit("bench: the peer cannot mirror a list in %s.%s" % (section, key))
    if "importance" in data:
        sys.exit("bench: the peer mirrors importance_decay only, not data.importance")
    seeds = int(train.get("seeds", 1))
    return [float(d) for d in densities for _ in range(seeds)]


def peer_args(spec, device, threads):
    model, data, opt = spec["model"], spec["data"], spec.get("optimizer", {})
    if model.get("hidden_activation", "none") != "none" or model.get("output_activation", "relu") != "relu" \
            or not model.get("bias", True):
        sys.exit("bench: the peer implements the paper model only (no hidden ReLU, output ReLU, bias)")
    if opt.get("name", "adamw") != "adamw" or opt.get("schedule", "constant") != "constant":
        sys.exit("bench: the peer implements AdamW with a constant lr only")
    densities = spec_instances_and_densities(spec)
    args = ["--device", device, "--instances", str(len(densities)),
            "--n", str(model["n_features"]), "--m", str(model["n_hidden"]),
            "--decoder", model.get("decoder", "tied"),
            "--batch", str(data.get("batch_size", BATCH)), "--steps", str(spec["train"]["steps"]),
            "--importance-decay", repr(float(data.get("importance_decay", 1.0))),
            "--lr", repr(float(opt.get("lr", 1e-3))),
            "--weight-decay", repr(float(opt.get("weight_decay", 0.01))),
            "--seed", str(spec.get("train", {}).get("seed", 0))]
    if len(set(densities)) == 1:
        args += ["--density", repr(densities[0])]
    else:
        args += ["--densities", ",".join(repr(d) for d in densities)]
    if threads:
        args += ["--threads", str(threads)]
    return args


def gpu_spec(name, decoder, n, m, instances, steps):
    return {
        "name": "bench_%s_%s" % (name, decoder),
        "model": {"n_features": n, "n_hidden": m, "decoder": decoder, "hidden_activation": "none",
                  "output_activation": "relu", "bias": True},
        "data": {"density": GPU_DENSITY, "importance_decay": GPU_IMPORTANCE_DECAY, "batch_size": BATCH},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "schedule": "constant"},
        # one log line at the end: the peer does not log either
        "train": {"steps": steps, "seed": 0, "seeds": instances, "log_every": steps},
        "output": {"images": False},
    }


# ----------------------------------------------------------------------------
# running one repetition

def run_logged(cmd, log_path, timeout, env=None):
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                                  timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - t0, "timed out after %d s" % timeout
        log.write(proc.stdout)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        with open(log_path) as log:
            last = [l.strip() for l in log if l.strip()][-1:]
        return proc, elapsed, "exit code %d: %s (log: %s)" % (proc.returncode, last[0] if last else "",
                                                              log_path)
    return proc, elapsed, None


def run_tms(tms, spec_path, run_dir, backend, threads, timeout):
    cmd = [tms, "train", spec_path, "--out", run_dir, "--backend", backend]
    if threads:
        cmd += ["--threads", str(threads)]
    proc, elapsed, err = run_logged(cmd, run_dir + ".log", timeout)
    if err:
        return {"error": "tms: " + err}
    try:
        with open(os.path.join(run_dir, "manifest.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(run_dir, "instances.csv")) as f:
            losses = [float(row["loss_mean_features"]) for row in csv.DictReader(f)]
        return {"wall_seconds": float(manifest["wall_seconds"]), "process_seconds": elapsed,
                "instances": int(manifest["instances"]), "backend": manifest.get("backend"),
                "device": manifest.get("device"),
                "loss_mean_features": sum(losses) / len(losses) if losses else None}
    except (OSError, KeyError, ValueError, TypeError) as e:
        return {"error": "tms: cannot read %s/manifest.json or instances.csv: %s" % (run_dir, e)}


def run_peer(python, args, log_path, timeout, blas_threads=None):
    # blas_threads: the thread count for the BLAS under torch too (Debian's torch calls the
    # system OpenBLAS, whose own threads torch.set_num_threads does not limit: left alone it
    # runs one per core beside torch's, and on a shared machine they spin waiting for each other)
    env = None
    if blas_threads:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))
    proc, elapsed, err = run_logged([python, PEER, "--json"] + args, log_path, timeout, env)
    if err:
        return {"error": "peer: " + err}
    try:
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "peer: no JSON line on stdout (log: %s)" % log_path}
    return {"wall_seconds": r["wall_seconds"], "process_seconds": elapsed,
            "first_step_seconds": r.get("first_step_seconds"), "instances": r["instances"],
            "device": r["device_name"], "torch_version": r["torch_version"],
            "loss_mean_features": r["final_loss_mean_features"]}


# ----------------------------------------------------------------------------
# summary

def summarise(rows):
    """rows: [{workload, impl, steps, reps: [result...]}] -> table lines (Markdown)."""
    out = ["| workload | impl | wall s (median) | wall min..max | process s | instance-steps/s "
           "| loss_mean_features | torch/tms wall |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    tms_wall = {}
    for row in rows:
        ok = [r for r in row["reps"] if "error" not in r]
        if row["impl"] == "tms" and ok:
            tms_wall[row["workload"]] = statistics.median(r["wall_seconds"] for r in ok)
    for row in rows:
        ok = [r for r in row["reps"] if "error" not in r]
        if not ok:
            err = row["reps"][0]["error"] if row["reps"] else "not run"
            out.append("| %s | %s | failed: %s | | | | | |" % (row["workload"], row["impl"],
                                                              err.replace("|", "/")))
            continue
        walls = [r["wall_seconds"] for r in ok]
        wall = statistics.median(walls)
        proc = statistics.median(r["process_seconds"] for r in ok)
        isps = ok[0]["instances"] * row["steps"] / wall
        losses = [r["loss_mean_features"] for r in ok if r.get("loss_mean_features") is not None]
        loss = "%.5f" % statistics.median(losses) if losses else "n/a"
        if row["impl"] == "tms":
            ratio = "1"
        elif row["workload"] in tms_wall:
            ratio = "%.2f" % (wall / tms_wall[row["workload"]])
        else:
            ratio = "n/a"
        impl = row["impl"]
        first = [r.get("first_step_seconds") for r in ok if r.get("first_step_seconds") is not None]
        if "compile" in impl and first:
            impl += " (first step %.1f s)" % statistics.median(first)
        note = "" if len(ok) == len(row["reps"]) else " (%d of %d reps failed)" % (
            len(row["reps"]) - len(ok), len(row["reps"]))
        out.append("| %s | %s | %.3f%s | %.3f..%.3f | %.2f | %s | %s | %s |" % (
            row["workload"], impl, wall, note, min(walls), max(walls), proc,
            "{:,.0f}".format(isps), loss, ratio))
    return out


def write_atomic(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------
# the two benchmarks

# CPU shapes: name -> (n, m, instances, steps, densities, importance decay). Steps are
# scaled down from a figure's 10,000 (the table says how many), most for the slow shapes, so
# that the whole table runs in minutes on a shared 2-core machine; instance-steps/s and
# FLOP/s do not depend on the step count beyond start-up, which neither wall clock counts.
def _intro_densities(count):
    return [round(20.0 ** (-k / (count - 1)), 6) for k in range(count)] if count > 1 else [1.0]


UNIFORM_DENSITIES = [1.0, 0.5, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05, 0.035, 0.025, 0.018, 0.012, 0.008, 0.005]
CPU_SHAPES = [
    ("5->2 x10", 5, 2, 10, 2000, _intro_densities(10), 0.9),
    ("100->20 x8", 100, 20, 8, 1000, _intro_densities(8), 1.0),
    ("400->30 x14", 400, 30, 14, 200, UNIFORM_DENSITIES, 1.0),
    ("1000->100 x2", 1000, 100, 2, 60, [0.05, 0.05], 1.0),
    ("2000->400 x1", 2000, 400, 1, 20, [0.05], 1.0),
]


def cpu_spec(name, n, m, steps, densities, importance_decay):
    return {
        "name": "bench_cpu_%dx%d" % (n, m),
        "model": {"n_features": n, "n_hidden": m, "decoder": "tied", "hidden_activation": "none",
                  "output_activation": "relu", "bias": True},
        "data": {"density": densities, "importance_decay": importance_decay, "batch_size": BATCH},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "schedule": "constant"},
        "train": {"steps": steps, "seed": 0, "seeds": 1, "log_every": steps},
        "output": {"images": False},
    }


def run_ceiling(crossover, n, m, threads, seconds):
    """The SGEMM ceiling of an n -> m model (cpu_crossover ceiling): FLOP/s, or None."""
    try:
        out = subprocess.run([crossover, "ceiling", "%d:%d" % (n, m), str(threads), str(seconds)],
                             capture_output=True, text=True, timeout=600)
        return json.loads(out.stdout.strip().splitlines()[-1])["flop_per_second"]
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, KeyError):
        return None


def bench_cpu(a):
    shapes = CPU_SHAPES
    if a.only:
        wanted = set(a.only.split(","))
        shapes = [s for s in CPU_SHAPES if s[0].split(" ")[0] in wanted or s[0] in wanted]
        if not shapes:
            sys.exit("bench: --only %s names no shape; shapes: %s" % (a.only, ", ".join(s[0] for s in CPU_SHAPES)))
    full = not a.steps and not a.only
    results = a.results
    if not results:
        if full:
            results = os.path.join(HERE, "RESULTS_cpu.md")
        else:
            results = "/tmp/tms_bench_cpu.md"
            print("bench: not the full table (--steps or --only); results go to %s, not RESULTS_cpu.md"
                  % results, file=sys.stderr)
    threads = a.threads or os.cpu_count()
    crossover = os.path.join(os.path.dirname(a.tms), "cpu_crossover")
    if not os.access(crossover, os.X_OK):
        sys.exit("bench: no %s (the SGEMM ceiling); build it: cmake --build build --target cpu_crossover" % crossover)
    facts = torch_facts(a.python)
    work = tempfile.mkdtemp(prefix="tms_bench_cpu.")
    load_before = load_average()
    rows, plan = [], []
    for name, n, m, instances, steps, densities, decay in shapes:
        steps = a.steps or steps
        if (n, m) == (5, 2):  # the notebook's intro run, as committed
            with open(os.path.join(HERE, "intro_cpu.json")) as f:
                spec = json.load(f)
            spec["train"]["steps"] = steps
        else:
            spec = cpu_spec(name, n, m, steps, densities, decay)
        spec_path = os.path.join(work, "%dx%d.json" % (n, m))
        with open(spec_path, "w") as f:
            json.dump(spec, f, indent=1)
        tms_row = {"workload": name, "impl": "tms", "steps": steps, "reps": [], "n": n, "m": m,
                   "instances": instances, "densities": densities, "ceiling_reps": []}
        peer_row = {"workload": name, "impl": "torch " + facts["version"], "steps": steps, "reps": [],
                    "n": n, "m": m, "instances": instances}
        rows += [tms_row, peer_row]
        plan.append((name, n, m, spec_path, peer_args(spec, "cpu", threads), tms_row, peer_row))
    # interleaved: each repetition runs every shape's ceiling, tms and peer in turn
    for rep in range(a.reps):
        for name, n, m, spec_path, pargs, tms_row, peer_row in plan:
            tag = "%dx%d_%d" % (n, m, rep)
            print("bench: rep %d/%d %s: SGEMM ceiling, tms, torch" % (rep + 1, a.reps, name),
                  file=sys.stderr, flush=True)
            tms_row["ceiling_reps"].append(run_ceiling(crossover, n, m, threads, 1.0))
            tms_row["reps"].append(run_tms(a.tms, spec_path, os.path.join(work, "tms_" + tag), "cpu",
                                           threads, a.timeout))
            peer_row["reps"].append(run_peer(a.python, pargs, os.path.join(work, "torch_%s.log" % tag),
                                             a.timeout, blas_threads=threads))
    # FLOP/s: 10 B n m per instance-step (five products of 2 B n m: z, y; dDec, dh, dW)
    flops = ["| shape | steps | tms GFLOP/s | torch GFLOP/s | SGEMM ceiling GFLOP/s (min..max) "
             "| tms / ceiling |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    verdict = {}
    for k in range(0, len(rows), 2):
        t, p = rows[k], rows[k + 1]
        tok = [r for r in t["reps"] if "error" not in r]
        pok = [r for r in p["reps"] if "error" not in r]
        ceil = [c for c in t["ceiling_reps"] if c]
        per_step = 10.0 * BATCH * t["n"] * t["m"]
        if not tok or not pok or not ceil:
            flops.append("| %s | %d | n/a | n/a | n/a | n/a |" % (t["workload"], t["steps"]))
            continue
        tw = statistics.median(r["wall_seconds"] for r in tok)
        pw = statistics.median(r["wall_seconds"] for r in pok)
        tf = t["instances"] * t["steps"] * per_step / tw
        pf = t["instances"] * t["steps"] * per_step / pw
        cm = statistics.median(ceil)
        t["ratio_peer_over_tms"] = pw / tw
        t["fraction_of_ceiling"] = tf / cm
        verdict[t["workload"]] = (pw / tw, tf / cm)
        flops.append("| %s | %d | %.1f | %.1f | %.1f (%.1f..%.1f) | %.2f |" % (
            t["workload"], t["steps"], tf / 1e9, pf / 1e9, cm / 1e9, min(ceil) / 1e9, max(ceil) / 1e9, tf / cm))
    targets = []
    if verdict:
        worst = min(v[0] for v in verdict.values())
        targets.append("- tms at least as fast as the peer at every shape: %s (smallest torch/tms %.2f)"
                       % ("met" if worst >= 1.0 else "NOT met", worst))
    if "5->2 x10" in verdict:
        r = verdict["5->2 x10"][0]
        targets.append("- at least 10x on 5->2: %s (%.1fx)" % ("met" if r >= 10 else "NOT met", r))
    if "2000->400 x1" in verdict:
        f = verdict["2000->400 x1"][1]
        targets.append("- at least half the SGEMM ceiling at 2000->400: %s (%.2f)" % ("met" if f >= 0.5 else "NOT met", f))
    lines = [
        "# CPU benchmark: tms against the PyTorch peer, shape by shape",
        "",
        "Written by `experiments/bench/bench_cpu.sh`; see `experiments/bench/README.md`.",
        "",
        "- machine: %s, %d logical CPUs (nproc); load average before the run: %s, after: %s"
        % (cpu_model(), os.cpu_count(), load_before, load_average()),
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- tms commit: %s; torch %s (%s, its BLAS: %s); both on %d threads (tms --threads, "
        "torch.set_num_threads with OPENBLAS_NUM_THREADS and OMP_NUM_THREADS set to the same)" % (git_commit(), facts["version"], a.python, blas_of(a.python), threads),
        "- every shape: tied, output ReLU, bias, batch %d, AdamW lr 1e-3, wd 0.01, fp32; one density per "
        "instance: 5->2 and 100->20 20^-linspace(0,1,I) (1 .. 0.05; 5->2 with importance 0.9^i, the "
        "notebook's intro run), 400->30 the uniform figure's 14 (1 .. 0.005), 1000->100 and 2000->400 "
        "0.05; steps scaled down from a figure's 10,000 (column steps)" % BATCH,
        "- %d repetitions, interleaved (per repetition and shape: SGEMM ceiling, tms, torch); the "
        "tables show medians" % a.reps,
        "",
    ] + summarise(rows) + [
        "",
        "## FLOP/s against the SGEMM ceiling",
        "",
    ] + flops + [
        "",
        "FLOPs: 10 x batch x n x m per instance-step (the five products of a forward and backward: "
        "z = W x, y = W^T h, and in the backward dW from the decoder, dh, dW from the encoder), "
        "elementwise work and the data draw not counted. SGEMM ceiling: the same five products as "
        "OpenBLAS SGEMMs over the whole batch of 1024 on all %d threads, for one second, right "
        "before each tms run (`cpu_crossover ceiling`)." % threads,
        "",
        "## Targets",
        "",
    ] + targets + [
        "",
        "wall: each program's own clock around its training loop (tms: manifest.json "
        "wall_seconds; torch: time.perf_counter around the loop). process: the whole command, "
        "start-up and imports included. instance-steps/s = instances x steps / wall. "
        "torch/tms wall (peer wall / tms wall) above 1 means tms is faster by that factor. loss_mean_features: final "
        "loss, mean over batch and features, averaged over instances, as each program estimates it "
        "(a check that both trained, not a benchmark).",
        "",
    ]
    finish(a, results, lines, rows, work, {"mode": "cpu", "threads": threads, "load_before": load_before})


def blas_of(python):
    """Which BLAS library the interpreter's torch has loaded after a matmul (from its maps)."""
    code = ("import torch, re; a = torch.ones(64, 64); a @ a; "
            "libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if re.search('blas|mkl', l)}); "
            "print(' '.join(libs))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
        libs = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        libs = ""
    return libs or "unknown"


def bench_gpu(a):
    facts = torch_facts(a.python)
    if not facts["cuda"]:
        print("bench: warning: torch in %s sees no CUDA device" % a.python, file=sys.stderr)
    compile_ok = facts["compile"] and not a.no_compile
    if facts["compile"] is False and not a.no_compile:
        print("bench: torch %s has no torch.compile; the compiled peer is skipped"
              % facts["version"], file=sys.stderr)
    results = a.results or (os.path.join(HERE, "RESULTS_gpu.md") if not a.quick
                            else "/tmp/tms_bench_gpu_quick.md")
    wanted = [w.strip() for w in a.only.split(",")] if a.only else None
    work = tempfile.mkdtemp(prefix="tms_bench_gpu.")
    rows = []
    for name, (n, m, instances, steps) in GPU_WORKLOADS.items():
        if a.quick:
            steps //= 10
        for decoder in ("tied", "untied"):
            label = "%s-%s" % (name, decoder)
            if wanted and not any(label == w or name == w for w in wanted):
                continue
            spec = gpu_spec(name, decoder, n, m, instances, steps)
            spec_path = os.path.join(work, label + ".json")
            with open(spec_path, "w") as f:
                json.dump(spec, f, indent=1)
            pargs = peer_args(spec, "cuda", None)
            wl = "%s (n=%d m=%d I=%d %s, %d steps)" % (label, n, m, instances, decoder, steps)
            trio = [{"workload": wl, "impl": "tms", "steps": steps, "reps": []},
                    {"workload": wl, "impl": "torch eager", "steps": steps, "reps": []}]
            if compile_ok:
                trio.append({"workload": wl, "impl": "torch.compile", "steps": steps, "reps": []})
            for rep in range(a.reps):
                print("bench: %s rep %d/%d" % (label, rep + 1, a.reps), file=sys.stderr, flush=True)
                trio[0]["reps"].append(run_tms(a.tms, spec_path, os.path.join(work, "%s_tms_%d" % (label, rep)),
                                               "cuda", None, a.timeout))
                trio[1]["reps"].append(run_peer(a.python, pargs,
                                                os.path.join(work, "%s_eager_%d.log" % (label, rep)), a.timeout))
                if compile_ok and rep < a.compile_reps:
                    trio[2]["reps"].append(run_peer(a.python, pargs + ["--compile"],
                                                    os.path.join(work, "%s_compile_%d.log" % (label, rep)),
                                                    a.timeout))
            rows += trio
    if a.merge:
        with open(a.merge) as f:
            old = json.load(f)["rows"]
        have = {r["workload"] for r in rows}
        rows = [r for r in old if r["workload"] not in have] + rows
        rows.sort(key=lambda r: r["workload"])
    smi = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    lines = [
        "# GPU benchmark: tms against the PyTorch peer",
        "",
        "Written by `experiments/bench/bench_gpu.sh`; see `experiments/bench/README.md`.%s"
        % (" **--quick: steps cut 10x, a smoke run, not a result.**" if a.quick else ""),
        "",
        "- GPU (nvidia-smi name, driver, memory): %s; host CPU: %s" % (smi, cpu_model()),
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- tms commit: %s; torch %s (%s)" % (git_commit(), facts["version"], a.python),
        "- every workload: batch %d, density %g for every instance, importance 1 (decay %g), "
        "AdamW lr 1e-3 wd 0.01, fp32 (torch's default: TF32 off for matmul); tms --backend cuda; "
        "peer eager%s" % (BATCH, GPU_DENSITY, GPU_IMPORTANCE_DECAY,
                          " and torch.compile (batch+forward+loss compiled; backward via AOTAutograd; "
                          "AdamW eager; compile time is inside the wall, first step shown)" if compile_ok
                          else " only (torch.compile skipped)"),
        "- %d repetitions%s, interleaved; table shows the median%s"
        % (a.reps, " (torch.compile: %d)" % min(a.compile_reps, a.reps) if compile_ok else "",
           "; rows merged from %s" % a.merge if a.merge else ""),
        "",
    ] + summarise(rows) + [
        "",
        "wall: each program's own clock around its training loop, synchronised before it stops "
        "(tms: manifest.json wall_seconds; torch: perf_counter after torch.cuda.synchronize). "
        "process: the whole command, CUDA context creation and imports included. "
        "torch/tms wall (peer wall / tms wall) above 1 means tms is faster by that factor. loss_mean_features: final loss "
        "(mean over batch and features, averaged over instances) as each program estimates it.",
        "",
    ]
    finish(a, results, lines, rows, work, {"mode": "gpu", "quick": a.quick})


def finish(a, results, lines, rows, work, meta):
    text = "\n".join(lines)
    write_atomic(results, text)
    sidecar = os.path.splitext(results)[0] + ".json"
    write_atomic(sidecar, json.dumps(dict(meta, rows=rows), indent=1) + "\n")
    print(text)
    print("bench: wrote %s and %s; logs and run folders in %s" % (results, sidecar, work),
          file=sys.stderr)
    failed = any("error" in r for row in rows for r in row["reps"])
    if not a.keep and not failed:   # logs of a failed command stay for reading
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("cpu", "gpu"):
        s = sub.add_parser(mode)
        s.add_argument("--tms", default=os.path.join(ROOT, "build", "tms"), help="tms binary (default build/tms)")
        s.add_argument("--python", default=sys.executable, help="interpreter with torch for the peer")
        s.add_argument("--reps", type=int, default=3, help="repetitions; the median is reported (default 3)")
        s.add_argument("--results", default=None, help="Markdown output (a .json with every rep goes beside it)")
        s.add_argument("--timeout", type=int, default=1800, help="seconds allowed per command (default 1800)")
        s.add_argument("--keep", action="store_true", help="keep the run folders and logs")
    cpu, gpu = sub.choices["cpu"], sub.choices["gpu"]
    cpu.add_argument("--steps", type=int, default=None, help="override every shape's steps (a check, not a result)")
    cpu.add_argument("--only", default=None, help="comma list of shapes: 5->2, 100->20, 400->30, 1000->100, 2000->400")
    cpu.add_argument("--threads", type=int, default=None, help="threads for both (default: nproc)")
    gpu.add_argument("--quick", action="store_true", help="cut every workload's steps 10x (smoke run)")
    gpu.add_argument("--only", default=None, help="comma list of workloads: A, B, C or A-tied, C-untied, ...")
    gpu.add_argument("--no-compile", action="store_true", help="skip the torch.compile peer")
    gpu.add_argument("--compile-reps", type=int, default=1,
                     help="repetitions of the torch.compile peer (default 1: each one recompiles)")
    gpu.add_argument("--merge", default=None,
                     help="a previous run's RESULTS .json: keep its rows for workloads not run now")
    a = p.parse_args()
    a.tms = os.path.abspath(a.tms)
    if not os.access(a.tms, os.X_OK):
        sys.exit("bench: no tms binary at %s; build it first: cmake -S . -B build && cmake --build build -j"
                 % a.tms)
    bench_cpu(a) if a.mode == "cpu" else bench_gpu(a)


if __name__ == "__main__":
    main()
