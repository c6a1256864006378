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

def run_logged(cmd, log_path, timeout):
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                                  timeout=timeout)
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


def run_peer(python, args, log_path, timeout):
    proc, elapsed, err = run_logged([python, PEER, "--json"] + args, log_path, timeout)
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

def bench_cpu(a):
    spec_src = os.path.join(HERE, "intro_cpu.json")
    with open(spec_src) as f:
        spec = json.load(f)
    full_steps = spec["train"]["steps"]
    if a.steps:
        spec["train"]["steps"] = a.steps
    steps = spec["train"]["steps"]
    results = a.results
    if not results:
        if steps == full_steps:
            results = os.path.join(HERE, "RESULTS_cpu.md")
        else:
            results = "/tmp/tms_bench_cpu_steps%d.md" % steps
            print("bench: %d steps is not the full run; results go to %s, not RESULTS_cpu.md"
                  % (steps, results), file=sys.stderr)
    threads = a.threads or os.cpu_count()
    facts = torch_facts(a.python)
    work = tempfile.mkdtemp(prefix="tms_bench_cpu.")
    spec_path = os.path.join(work, "intro_cpu.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    load_before = load_average()
    pargs = peer_args(spec, "cpu", threads)
    rows = [{"workload": "intro", "impl": "tms", "steps": steps, "reps": []},
            {"workload": "intro", "impl": "torch " + facts["version"], "steps": steps, "reps": []}]
    for rep in range(a.reps):
        print("bench: rep %d/%d tms" % (rep + 1, a.reps), file=sys.stderr, flush=True)
        rows[0]["reps"].append(run_tms(a.tms, spec_path, os.path.join(work, "tms_%d" % rep), "cpu",
                                       threads, a.timeout))
        print("bench: rep %d/%d torch" % (rep + 1, a.reps), file=sys.stderr, flush=True)
        rows[1]["reps"].append(run_peer(a.python, pargs, os.path.join(work, "torch_%d.log" % rep),
                                        a.timeout))
    lines = [
        "# CPU benchmark: tms against the PyTorch peer",
        "",
        "Written by `experiments/bench/bench_cpu.sh`; see `experiments/bench/README.md`.",
        "",
        "- machine: %s, %d logical CPUs (nproc); load average before the run: %s"
        % (cpu_model(), os.cpu_count(), load_before),
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- tms commit: %s; torch %s (%s); both on %d threads (tms --threads, torch.set_num_threads)"
        % (git_commit(), facts["version"], a.python, threads),
        "- workload: the notebook's intro run: 10 instances, n=5, m=2, tied, batch %d, %d steps, "
        "importance 0.9^i, density 20^-linspace(0,1,10) (1 .. 0.05, one per instance), AdamW "
        "lr 1e-3, wd 0.01, fp32" % (spec["data"]["batch_size"], steps),
        "- %d repetitions, interleaved (tms, torch, tms, torch, ...); table shows the median"
        % a.reps,
        "",
    ] + summarise(rows) + [
        "",
        "wall: each program's own clock around its training loop (tms: manifest.json "
        "wall_seconds; torch: time.perf_counter around the loop). process: the whole command, "
        "start-up and imports included. instance-steps/s = instances x steps / wall. "
        "torch/tms wall (peer wall / tms wall) above 1 means tms is faster by that factor. loss_mean_features: final "
        "loss, mean over batch and features, averaged over instances, as each program estimates it "
        "(a check that both trained, not a benchmark).",
        "",
    ]
    finish(a, results, lines, rows, work, {"mode": "cpu", "steps": steps})


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
    cpu.add_argument("--steps", type=int, default=None, help="override train.steps (a check, not a result)")
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
