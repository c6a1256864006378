#!/usr/bin/python3
"""cli_fuzz.py: fuzz the real tms binary from the command line, and check its contract.

    cli_fuzz.py --tms build-asan/tms [--seconds 60] [--seed N] [--work DIR] [--corpus DIR]

Each input is a spec (one of the corpus, shrunk so it trains in a moment, then mutated:
fields set to odd values of odd types, deleted, duplicated, unknown fields added, bytes
flipped, text appended), up to three --set overrides (valid, out of range, malformed)
and a random choice of flags (--threads, --backend, --cuda-path, --shard, --checkpoint-every,
--force, --tf32, --quiet, --resume, unknown flags, a flag without its value). Sometimes the
command is `render` or `merge` of earlier outputs, some of them tampered with. Each run
of tms must keep the contract the README states:
  - it exits 0, 1 or 2 (3 only on SIGTERM, never sent here): never a signal, never a
    sanitizer report (an ASan/UBSan build makes every memory error a report);
  - exit 2 (bad input) leaves no run directory and no RUNDIR.partial (and an existing
    RUNDIR untouched), and its stderr is one message that names a field, a flag, a file
    or the argument at fault;
  - exit 0 of `train` leaves a complete run directory: manifest.json says "complete",
    the tensors and tables are there, and no RUNDIR.partial is left.
A crash or contract violation is saved under WORK/findings/NNNN/ (spec, command,
stderr) and printed with a command that reproduces it. Prints: inputs tried, crashes,
contract violations (and timeouts: a run still going after --timeout seconds, killed;
neither a crash nor a violation). Exit status 1 when there was a crash or a violation.
"""
import argparse, glob, json, os, random, shlex, shutil, signal, subprocess, sys, time

SCHEMA = {
    "model": ["n_features", "n_hidden", "decoder", "hidden_activation", "output_activation", "bias",
              "hidden_bias"],
    "data": ["density", "importance_decay", "importance", "batch_size", "task", "feature_sets", "relative_density"],
    "optimizer": ["name", "lr", "betas", "eps", "weight_decay", "schedule", "warmup_steps"],
    "train": ["steps", "seed", "seeds", "log_every", "eval_samples"],
    "output": ["images", "contact_sheet", "max_images", "snapshots", "snapshot_spacing"],
}
CHOICES = ["tied", "untied", "none", "relu", "sparse", "abs", "adamw", "adam", "constant", "linear", "cosine",
           "independent", "correlated", "anticorrelated", "gelu", "", "TIED", "relu\u0000x"]
# odd values, as JSON text: numbers at and past every limit, other types, broken JSON
ODD = ["0", "-1", "1", "2", "3", "0.5", "1e-3", "1e6", "1e7", "1e30", "1e400", "-1e400", "-0", "1.5", "5e-324",
       "2147483647", "2147483648", "4294967297", "9007199254740992", "9007199254740993", "1e15", "1000000",
       "100000000", "8192", "16777217", "4096", "true", "false", "null", '"x"', '""', "[]", "[1]", "[1,0.1]",
       "[0.9,0.999]", "[[1,1],[1]]", "{}", '{"kind":"correlated","size":2}', '{"kind":"anticorrelated","size":3}',
       "1,0.1", "10_000", "1e-3,1e-2", "[1,", "0x10", "NaN", "Infinity", '"\\u0000"', "[" * 50 + "]" * 50]
# flag values tms must accept, and values it must refuse
GOOD_FLAGS = {"--threads": ["1", "2"], "--backend": ["cpu", "auto"], "--shard": ["0/1", "0/2", "1/2", "1/3"],
              "--checkpoint-every": ["1", "3", "1000"], "--cuda-path": ["auto", "gemm", "fused"]}
BAD_FLAGS = {
    "--threads": ["0", "-1", "4097", "abc", "", "1.5", "99999999999999999999", "2x"],
    "--backend": ["cuda", "tpu", "", "CPU"],
    "--shard": ["2/2", "0/0", "-1/2", "4294967297/4", "1/4294967297", "auto", "a/b", "1", "0/1000001", "1/2/3",
                "", "3/1000", "0/1000000"],
    "--checkpoint-every": ["0", "-5", "x", "1e3", "9223372036854775808", ""],
    "--cuda-path": ["", "cuBLAS", "FUSED", "fused ", "gemm,fused"],
}


def shrink(spec, rng):
    """Cap a valid spec so it trains in well under a second (before it is mutated)."""
    if not isinstance(spec, dict):
        return spec
    m = spec.setdefault("model", {}) if isinstance(spec.get("model", {}), dict) else None
    if m is not None:
        for k, cap in (("n_features", 8), ("n_hidden", 4)):
            if isinstance(m.get(k), int) and m[k] > cap:
                m[k] = cap
        m.setdefault("n_features", 5)
        m.setdefault("n_hidden", 2)
    d = spec.get("data")
    if isinstance(d, dict):
        d["batch_size"] = rng.choice([8, 32, 64])
        for k in ("density", "importance_decay"):
            if isinstance(d.get(k), list):
                d[k] = d[k][:2]
        if isinstance(d.get("importance"), list):
            d.pop("importance")
        fs = d.get("feature_sets")
        if isinstance(fs, dict) and isinstance(m, dict) and isinstance(fs.get("size"), int):
            m["n_features"] = fs["size"] * 2
    else:
        spec["data"] = {"batch_size": 32}
    o = spec.get("optimizer")
    if isinstance(o, dict):
        for k in ("lr", "weight_decay"):
            if isinstance(o.get(k), list):
                o[k] = o[k][:2]
        o.pop("warmup_steps", None)
    t = spec.get("train")
    t = t if isinstance(t, dict) else {}
    spec["train"] = t
    t["steps"] = rng.choice([1, 2, 7, 20, 50])
    t.pop("log_every", None)
    t.pop("eval_samples", None)
    if isinstance(t.get("seed"), list):
        t["seed"] = t["seed"][:2]
    if isinstance(t.get("seeds"), int):
        t["seeds"] = min(t["seeds"], 2)
    spec["output"] = {"images": rng.random() < 0.3, "contact_sheet": rng.random() < 0.3, "max_images": 2}
    if rng.random() < 0.3:  # snapshots through checkpoints, resume, merge and tampering too
        spec["output"]["snapshots"] = rng.choice([1, 3, 64, [0], [0, 1, 5]])
    return spec


def mutate_tree(spec, rng):
    for _ in range(rng.choice([1, 1, 2, 3])):
        r = rng.random()
        if not isinstance(spec, dict):
            break
        sec = rng.choice(list(SCHEMA) + ["name", "bogus"])
        if sec == "name":
            spec["name"] = rng.choice(["x", "", "a" * 127, "a" * 128, 3, None, "../../etc", "a/b", "\u00e9\u0000"])
            continue
        if r < 0.08:
            spec.pop(sec, None)
            continue
        if r < 0.14:
            spec[sec] = json.loads(rng.choice(ODD[:30]))
            continue
        s = spec.setdefault(sec, {})
        if not isinstance(s, dict):
            continue
        key = rng.choice(SCHEMA.get(sec, ["x"]) + ["unknown_field"])
        if r < 0.25:
            s.pop(key, None)
        elif r < 0.45:
            s[key] = rng.choice(CHOICES)
        else:
            try:
                s[key] = json.loads(rng.choice(ODD))
            except ValueError:
                s[key] = rng.choice(ODD)  # broken JSON: becomes a string here, raw text below
    return spec


def mutate_text(text, rng):
    b = bytearray(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    for _ in range(rng.randint(1, 4)):
        k = rng.random()
        pos = rng.randint(0, max(len(b) - 1, 0))
        if k < 0.25 and b:
            b[pos] = rng.randint(0, 255)
        elif k < 0.45:
            b[pos:pos] = rng.choice([b",", b"}", b"]", b"\"", b"\\u0000", b"//c", b"\x00", b"1e400", b" 0", b"{"])
        elif k < 0.6 and b:
            del b[pos:pos + rng.randint(1, 8)]
        elif k < 0.75:
            b = b[:pos]
        elif k < 0.9:
            b += rng.choice([b" trailing", b"\n// comment", b"{}", b"\x00garbage", b",", b"\n"])
        else:
            b = b + b  # two JSON values
    return bytes(b)


def random_override(rng):
    r = rng.random()
    if r < 0.1:
        return rng.choice(["train", "=1", ".x=1", "model.=2", "a.b.c=1", "name.x=1", "output.images", "x" * 70 + ".y=1",
                           "train." + "k" * 70 + "=1", "train.steps", "bogus.field=1", "model.n_features"])
    sec = rng.choice(list(SCHEMA))
    key = rng.choice(SCHEMA[sec] + ["typo"])
    val = rng.choice(ODD + CHOICES) if rng.random() < 0.7 else rng.choice(["1", "2", "10", "0.1", "untied", "relu"])
    return f"{sec}.{key}={val}"


def random_flags(rng, out, bad):
    flags = []
    for flag in GOOD_FLAGS:
        if rng.random() < 0.3:
            flags += [flag, rng.choice(GOOD_FLAGS[flag])]
    for flag in ("--force", "--tf32", "--quiet"):
        if rng.random() < 0.2:
            flags.append(flag)
    if bad:
        r = rng.random()
        if r < 0.7:
            flag = rng.choice(list(BAD_FLAGS))
            flags += [flag, rng.choice(BAD_FLAGS[flag])]
        elif r < 0.8:
            flags.append(rng.choice(["--bogus", "-x", "--help", "-", "--set"]))
        elif r < 0.9:
            flags += ["--resume", out]
        else:
            flags += ["--out", out + "2"]
        if rng.random() < 0.1:
            flags.append("--out")  # a flag without its value
    return flags


class Fuzzer:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.work = os.path.abspath(args.work)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(os.path.join(self.work, "findings"))
        self.specs = []
        for p in sorted(glob.glob(os.path.join(args.corpus, "*"))):
            raw = open(p, "rb").read().split(b"\0")[0]
            try:
                self.specs.append(json.loads(raw))
            except ValueError:
                self.specs.append(raw)
        self.complete = []  # finished runs, for render and merge
        self.counts = {"inputs": 0, "crashes": 0, "violations": 0, "timeouts": 0, "lsan_flakes": 0, 0: 0, 1: 0, 2: 0}
        self.env = dict(os.environ, OMP_NUM_THREADS="1",
                        # intercept_tls_get_addr=0: as tests/sanitize.sh (findings.md 6)
                        ASAN_OPTIONS="exitcode=99:detect_leaks=1:allocator_may_return_null=1:malloc_limit_mb=2048:"
                                     "abort_on_error=0:intercept_tls_get_addr=0:" + os.environ.get("ASAN_OPTIONS", ""),
                        UBSAN_OPTIONS="exitcode=99:print_stacktrace=1:halt_on_error=1",
                        LSAN_OPTIONS="exitcode=99:" + os.environ.get("LSAN_OPTIONS", ""))

    def run(self, argv, cwd):
        t0 = time.time()
        p = subprocess.Popen(argv, cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=self.a.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            return None, err.decode("utf-8", "replace"), time.time() - t0
        return p.returncode, err.decode("utf-8", "replace"), time.time() - t0

    def report(self, kind, why, case_dir, argv, stderr, files):
        self.counts["crashes" if kind == "crash" else "violations"] += 1
        n = self.counts["crashes"] + self.counts["violations"]
        d = os.path.join(self.work, "findings", f"{n:04d}_{kind}")
        os.makedirs(d)
        for name, data in files.items():
            open(os.path.join(d, name), "wb").write(data)
        cmd = " ".join(shlex.quote(x) for x in argv)
        open(os.path.join(d, "command.sh"), "w").write(f"cd {shlex.quote(case_dir)}\n{cmd}\n")
        open(os.path.join(d, "stderr.txt"), "w").write(stderr)
        lines = stderr.strip().splitlines()
        print(f"cli_fuzz: {kind.upper()}: {why}\n  reproduce: (cd {d} && {cmd})\n  stderr: "
              + "\n          ".join(lines[:25]), flush=True)

    def one(self, i):
        rng = self.rng
        case = os.path.join(self.work, f"case{i % 8}")
        shutil.rmtree(case, ignore_errors=True)
        os.makedirs(case)
        out = "run"
        files = {}
        precreated = False
        r = rng.random()
        if r < 0.06 and self.complete:
            argv = self.render_or_merge(rng, case, files)
        else:
            # what to get wrong: nothing (the success path), the spec's fields, its text, an
            # override or a flag (one or two of them)
            bad = set(rng.sample(["tree", "text", "set", "flag"], rng.choice([1, 1, 2]))) if rng.random() < 0.7 else set()
            base = rng.choice(self.specs)
            if isinstance(base, (dict, list)):
                spec = json.loads(json.dumps(base))
                if rng.random() < 0.95:
                    spec = shrink(spec, rng)
                if "tree" in bad:
                    spec = mutate_tree(spec, rng)
                text = json.dumps(spec)
                text = mutate_text(text, rng) if "text" in bad else text.encode()
            else:
                text = mutate_text(base, rng)
            spec_name = rng.choice(["spec.json", "spec.json", "spec", "s p\u00e9c.json"])
            files[spec_name] = text
            open(os.path.join(case, spec_name), "wb").write(text)
            sets = []
            for _ in range(rng.choice([0, 0, 1, 2])):
                sets += ["--set", rng.choice(["train.steps=3", "model.decoder=untied", "data.density=[1,0.5]",
                                              "model.hidden_activation=relu", "optimizer.lr=0.01", "train.seeds=2"])]
            if "set" in bad:
                sets += ["--set", random_override(rng)]
            if rng.random() < 0.85:  # most specs train in a moment, whatever the mutations did
                sets = ["--set", f"train.steps={rng.choice([1, 3, 20])}"] + sets
            if rng.random() < 0.05:  # an existing run directory
                precreated = True
                os.makedirs(os.path.join(case, out))
                open(os.path.join(case, out, "keep"), "w").write("mine")
            args = [spec_name, "--out", out] + sets + random_flags(rng, out, "flag" in bad)
            if rng.random() < 0.05:
                rng.shuffle(args)
            argv = [self.a.tms, "train"] + [x.replace("\0", "") for x in args]  # argv has no NUL
        for k in range(2, len(argv) - 1):  # the run directory tms writes: the last --out given
            if argv[k] in ("--out", "--resume") and argv[1] == "train":
                out = argv[k + 1]
        existed = precreated and out == "run"
        # what --out names may exist before tms runs without being a run directory it made:
        # '' , '.', '..' or '/' name the case directory or its parents
        there_before = os.path.lexists(os.path.join(case, out))
        rc, err, secs = self.run(argv, case)
        self.counts["inputs"] += 1
        if "LeakSanitizer has encountered a fatal error" in err:
            # LeakSanitizer's own tracer failed (it stops every thread at exit; rarely it
            # crashes itself, "Tracer caught signal 11"): not a report about tms. Run the
            # input again from the same state; only a failure that comes back counts.
            self.counts["lsan_flakes"] += 1
            for name in (out, out + ".partial"):
                if not ((existed or there_before) and name == out):
                    shutil.rmtree(os.path.join(case, name), ignore_errors=True)
            rc, err, secs = self.run(argv, case)
        if self.a.verbose or rc is None:
            print(f"[{i}] {'rc %d' % rc if rc is not None else 'TIMEOUT (killed)'} {secs:.1f}s "
                  f"{' '.join(shlex.quote(x) for x in argv[1:])}\n    "
                  + (err.strip().splitlines() or [""])[0][:200], flush=True)
        if rc is None:
            self.counts["timeouts"] += 1
            return
        self.check(rc, err, argv, case, out, existed, files, there_before)
        if rc == 0 and argv[1] == "train" and os.path.isdir(os.path.join(case, out)) and len(self.complete) < 6 \
                and "--shard" not in argv:
            keep = os.path.join(self.work, f"complete{len(self.complete)}")
            shutil.copytree(os.path.join(case, out), keep)
            self.complete.append(keep)

    def render_or_merge(self, rng, case, files):
        src = rng.choice(self.complete)
        dst = os.path.join(case, "src")
        shutil.copytree(src, dst)
        man = os.path.join(dst, "manifest.json")
        if rng.random() < 0.7:  # tamper with the manifest or a tensor
            if rng.random() < 0.6:
                m = json.load(open(man))
                path = rng.choice([["status"], ["shard", "count"], ["shard", "index"], ["instances"], ["spec", "model",
                                   "n_features"], ["spec", "train", "steps"], ["spec", "train", "seeds"],
                                   ["shard", "first_instance"], ["tms_version"], ["spec"], ["tensors"]])
                obj = m
                for k in path[:-1]:
                    obj = obj.setdefault(k, {}) if isinstance(obj, dict) else {}
                if isinstance(obj, dict):
                    v = rng.choice(ODD + ['"complete"'])
                    try:
                        obj[path[-1]] = json.loads(v)
                    except ValueError:
                        obj[path[-1]] = v
                text = json.dumps(m).encode()
            else:
                text = mutate_text(open(man, "rb").read(), rng) if rng.random() < 0.5 else b""
                if not text:
                    victim = rng.choice(glob.glob(os.path.join(dst, "*.npy")))
                    b = bytearray(open(victim, "rb").read())
                    if b:
                        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                    open(victim, "wb").write(b[:rng.randint(0, len(b))] if rng.random() < 0.3 else b)
                    text = open(man, "rb").read()
            open(man, "wb").write(text)
            files["manifest.json"] = text
        if rng.random() < 0.5:
            pick = ["--instances", rng.choice(["best", "all", "0", "0-1", "1,0", "0,0", "1-0", "", "x", "99", "-1",
                                               "0,", ",0", "00", "0-", "4294967296"] + ODD)] if rng.random() < 0.5 else []
            return [self.a.tms, "render", "src"] + (["--threads", "1"] if rng.random() < 0.5 else []) + pick
        others = ["src"] + [rng.choice(self.complete) for _ in range(rng.randint(0, 2))]
        return [self.a.tms, "merge", "run"] + others + (["--force"] if rng.random() < 0.2 else [])

    def check(self, rc, err, argv, case, out, existed, files, there_before=False):
        problems = []
        crash = None
        if rc < 0:
            crash = f"killed by signal {-rc}"
        elif rc == 99 or "Sanitizer" in err or "runtime error:" in err:
            crash = "sanitizer report"
        if crash:
            self.report("crash", crash, case, argv, err, files)
            return
        if rc not in (0, 1, 2):
            problems.append(f"exit code {rc}; expected 0, 1 or 2")
        self.counts[rc] = self.counts.get(rc, 0) + 1
        run_dir, partial = os.path.join(case, out), os.path.join(case, out + ".partial")
        helped = any(a in ("--help", "-h") for a in argv[2:])
        if rc == 2:
            if not existed and not there_before and os.path.exists(run_dir) and not os.path.isfile(run_dir):
                problems.append("exit 2 left a run directory")
            if existed and not os.path.exists(os.path.join(run_dir, "keep")):
                problems.append("exit 2 changed the existing run directory")
            if os.path.exists(partial):
                problems.append("exit 2 left RUNDIR.partial")
            lines = err.split("\n\n")[0].strip().splitlines()  # a usage text may follow a blank line
            if len(lines) != 1:
                problems.append(f"exit 2 printed {len(lines)} lines; expected one message")
            elif not self.names_culprit(lines[0], argv):
                problems.append("exit 2's message names no field, flag, file or argument")
        if rc == 0 and argv[1] == "train" and not helped:
            if os.path.exists(partial):
                problems.append("exit 0 left RUNDIR.partial")
            try:
                m = json.load(open(os.path.join(run_dir, "manifest.json")))
                if m.get("status") != "complete":
                    problems.append(f"exit 0 with manifest status {m.get('status')!r}")
                for f in ("W.npy", "eval_loss.npy", "loss.npy", "instances.csv", "features.csv", "loss.csv"):
                    if not os.path.exists(os.path.join(run_dir, f)):
                        problems.append(f"exit 0 without {f}")
            except (OSError, ValueError) as e:
                problems.append(f"exit 0 without a readable manifest.json ({e})")
        if problems:
            self.report("violation", "; ".join(problems), case, argv, err, files)

    @staticmethod
    def names_culprit(line, argv):
        if not line.startswith("tms"):
            return False
        words = ["--", "spec", "JSON", "RUNDIR", "OUT", "argument", "command", "shard", "manifest", "run"]
        words += list(SCHEMA) + [k for keys in SCHEMA.values() for k in keys] + ["name"]
        words += [os.path.basename(a) for a in argv[2:] if a and not a.startswith("-")]
        return any(w and w in line for w in words)

    def main(self):
        t0 = time.time()
        i = 0
        while time.time() - t0 < self.a.seconds and (self.a.runs == 0 or i < self.a.runs):
            self.one(i)
            i += 1
        c = self.counts
        print(f"cli_fuzz: {c['inputs']} inputs tried in {time.time() - t0:.0f} s (exit 0: {c[0]}, exit 1: {c[1]}, "
              f"exit 2: {c[2]}, timeouts: {c['timeouts']}, LeakSanitizer tracer failures rerun: {c['lsan_flakes']}); "
              f"crashes: {c['crashes']}; "
              f"contract violations: {c['violations']}", flush=True)
        return 1 if c["crashes"] or c["violations"] else 0


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tms", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--runs", type=int, default=0, help="stop after this many inputs (0: only --seconds)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time); printed")
    ap.add_argument("--timeout", type=float, default=8, help="seconds one tms run may take")
    ap.add_argument("--work", default="cli_fuzz_work")
    ap.add_argument("--verbose", action="store_true", help="print every command and its first line of stderr")
    ap.add_argument("--corpus", default=os.path.join(here, "corpus", "spec"))
    a = ap.parse_args()
    a.tms = os.path.abspath(a.tms)
    if a.seed is None:
        a.seed = int(time.time())
    print(f"cli_fuzz: seed {a.seed} (rerun the same inputs with --seed {a.seed}), tms {a.tms}", flush=True)
    sys.exit(Fuzzer(a).main())
