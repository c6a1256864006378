"""Train from Python: build a spec, run the compiled `tms`, stream its progress, load the run.

    run = tmslab.train("experiments/pentagon.json", out="runs/pentagon", steps=2000)
    run = tmslab.train({"model": {"n_features": 5, "n_hidden": 2}}, out="runs/p", density=[1, 0.05])

`tms` is found by `find_tms`: the TMS_BIN environment variable, then `tms` on PATH, then the
repository's build/tms next to this package (python/tmslab -> build/tms); with
`build=True` a missing one is built with scripts/build.sh. It runs as
`tms train SPEC --out OUT --progress json ...`: the JSON progress lines (one object per
line on stderr: step, steps, loss, steps_per_s) drive a tqdm bar (tqdm.auto: a widget in a
notebook, text in a terminal); tms's other messages are passed on. A nonzero exit raises
TmsError with tms's message and exit code; nothing is loaded then.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .run import Run, load

# The spec's fields by section (the README's spec table): keyword overrides name a field
# alone (steps=2000, density=[1, 0.1]) and go to tms as --set section.field=VALUE.
# optimizer.name is `optimizer=`; the spec's own name is `name=`.
SPEC_FIELDS: dict[str, str] = {
    **{f: "model" for f in ("n_features", "n_hidden", "decoder", "hidden_activation", "output_activation", "bias",
                            "hidden_bias")},
    **{f: "data" for f in ("density", "relative_density", "importance_decay", "importance", "batch_size", "task",
                           "feature_sets")},
    **{f: "optimizer" for f in ("lr", "betas", "eps", "weight_decay", "schedule", "warmup_steps")},
    **{f: "train" for f in ("steps", "seed", "seeds", "log_every", "eval_samples")},
    **{f: "output" for f in ("images", "contact_sheet", "max_images", "snapshots", "snapshot_spacing")},
}
SECTIONS = ("model", "data", "optimizer", "train", "output")

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 3


class TmsError(RuntimeError):
    """`tms` failed. `returncode` is its exit code (1 a runtime failure, 2 bad input: the
    spec, a flag, an existing run directory; 3 stopped by a signal with a checkpoint saved,
    continue with tmslab.train(resume=OUT)); `message` is what it printed (its `tms: ...`
    lines); `args_` the command line."""

    def __init__(self, message: str, returncode: int, argv: Sequence[str]) -> None:
        super().__init__(f"tms exited with code {returncode}: {message}" if message else
                         f"tms exited with code {returncode} (it printed nothing)")
        self.message = message
        self.returncode = returncode
        self.argv = list(argv)


class TmsNotFoundError(FileNotFoundError):
    """No compiled tms was found (and none was built)."""


def repo_root() -> Path | None:
    """The repository this package sits in (python/tmslab/ -> the root), or None when it
    was installed elsewhere (not from a clone)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "scripts" / "build.sh").is_file() and (root / "host").is_dir() else None


def _is_tms(path: str | os.PathLike[str]) -> bool:
    try:
        r = subprocess.run([os.fspath(path), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and r.stdout.startswith("tms ")


def find_tms(build: bool = False) -> Path:
    """The compiled tms: $TMS_BIN, else `tms` on PATH, else the repository's build/tms.

    With `build=True` and none found, builds it into the repository's build/ with
    scripts/build.sh (needs cmake and the libraries scripts/install-deps.sh installs).
    Raises TmsNotFoundError saying where it looked."""
    env = os.environ.get("TMS_BIN")
    if env:
        if not _is_tms(env):
            raise TmsNotFoundError(f"TMS_BIN={env} is not a tms binary that runs (`{env} --version` failed)")
        return Path(env)
    looked = ["$TMS_BIN (unset)"]
    on_path = shutil.which("tms")
    if on_path and _is_tms(on_path):
        return Path(on_path)
    looked.append(f"tms on PATH ({'not tms: ' + on_path if on_path else 'none'})")
    root = repo_root()
    if root is not None:
        built = root / "build" / "tms"
        if built.is_file() and _is_tms(built):
            return built
        looked.append(str(built))
        if build:
            print(f"tmslab: building tms with {root / 'scripts' / 'build.sh'} build", file=sys.stderr)
            r = subprocess.run(["bash", str(root / "scripts" / "build.sh"), "build"], cwd=root,
                               stdout=sys.stderr, stderr=sys.stderr)
            if r.returncode == 0 and _is_tms(built):
                return built
            raise TmsNotFoundError(f"scripts/build.sh failed (exit {r.returncode}); "
                                   f"bash scripts/install-deps.sh installs what it needs")
    hint = "tmslab.train(..., build=True) or bash scripts/build.sh builds it" if root else \
        "set TMS_BIN to a tms binary"
    raise TmsNotFoundError("no tms found: looked at " + ", ".join(looked) + f"; {hint}")


def set_flags(overrides: Mapping[str, Any]) -> list[str]:
    """Keyword overrides -> ["--set", "section.field=JSON", ...].

    A key is a spec field (`steps`, `density`: SPEC_FIELDS), `optimizer` (optimizer.name),
    `name`, or a dotted path (`"train.steps"`); a section name with a dict value overrides
    several fields of it (`model={"decoder": "untied"}`). Raises TypeError naming an
    unknown key."""
    flags: list[str] = []

    def add(path: str, value: Any) -> None:
        flags.extend(["--set", f"{path}={json.dumps(value, separators=(',', ':'))}"])

    for key, value in overrides.items():
        if "." in key:
            add(key, value)
        elif key in SECTIONS and isinstance(value, Mapping):
            for field, v in value.items():
                add(f"{key}.{field}", v)
        elif key == "optimizer":
            add("optimizer.name", value)
        elif key == "name":
            add("name", value)
        elif key in SPEC_FIELDS:
            add(f"{SPEC_FIELDS[key]}.{key}", value)
        else:
            raise TypeError(f"tmslab.train: unknown spec field {key!r}; expected one of "
                            f"{', '.join(sorted(SPEC_FIELDS))}, optimizer, name, a section "
                            f"({', '.join(SECTIONS)}) with a dict, or 'section.field'")
    return flags


def _progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True)


def run_tms(argv: Sequence[str], desc: str = "tms", progress: bool = True, echo: IO[str] | None = sys.stderr) -> list[str]:
    """Run `tms` with `argv` (which should include `--progress json`), drive a tqdm bar from
    its JSON progress lines, pass its other stderr lines to `echo` (None: keep them quiet).
    Returns those lines; raises TmsError on a nonzero exit. Ctrl-C (KeyboardInterrupt)
    sends tms SIGINT, so it saves a checkpoint and exits 3, which raises TmsError."""
    messages: list[str] = []
    bar = None
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    try:
        try:
            for line in proc.stdout:
                obj = None
                if line.startswith("{"):
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        obj = None
                if isinstance(obj, dict) and "step" in obj and "steps" in obj:
                    if bar is None:
                        bar = _progress_bar(int(obj["steps"]), 0, desc, progress)
                    if obj.get("loss") is not None:
                        bar.set_postfix(loss=f"{obj['loss']:.6g}", refresh=False)
                    bar.update(int(obj["step"]) - bar.n)
                    if int(obj["step"]) >= int(obj["steps"]):
                        bar.close()  # the last step: tms's closing messages print below the bar
                    continue
                text = line.rstrip("\n")
                messages.append(text)
                if echo is not None:
                    if bar is not None and not bar.disable and bar.n < (bar.total or 0):
                        bar.write(text, file=echo)
                    else:
                        print(text, file=echo, flush=True)
            rc = proc.wait()
        except KeyboardInterrupt:
            # tms saves a checkpoint on SIGINT (exit 3): let it, then report it
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate()
            messages += [ln for ln in rest.splitlines() if not ln.startswith("{")]
            rc = proc.returncode
    finally:
        if bar is not None:
            bar.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        raise TmsError("\n".join(messages).strip(), rc, argv)
    return messages


def train(spec: Mapping[str, Any] | str | os.PathLike[str] | None = None, *, out: str | os.PathLike[str] | None = None,
          resume: str | os.PathLike[str] | None = None, backend: str = "auto", threads: int | None = None,
          shard: str | None = None, checkpoint_every: int | None = None, force: bool = False, tf32: bool = False,
          cuda_path: str | None = None,
          progress: bool = True, echo: bool = True, tms: str | os.PathLike[str] | None = None, build: bool = False,
          extra_args: Iterable[str] = (), **overrides: Any) -> Run:
    """Train a spec with the compiled tms and return the loaded run (tmslab.load(out)).

    spec: a dict (the spec's sections, as in a spec file), a path to a spec file, or None
    (the keyword overrides are the whole spec). Keyword overrides (`steps=2000`,
    `density=[1, 0.1]`, `model={"decoder": "untied"}`, `"train.seeds"` via **{...}) are
    passed as `--set` flags, so tms checks them and names a bad one (see set_flags).
    out: the run directory to write (tms refuses an existing one unless force=True).
    resume: instead of spec and out, continue RUNDIR.partial from its checkpoint.
    backend ("auto", "cpu", "cuda"), threads, shard ("K/N"), checkpoint_every, tf32,
    cuda_path ("auto", "gemm", "fused"): the `tms train` flags of the same names.
    progress: show a tqdm bar (a widget in Jupyter). echo: pass tms's messages on to
    stderr. tms: the binary (default: find_tms(build)). extra_args: more flags, verbatim.

    Raises TmsError (with tms's message and exit code) when tms fails, TypeError for an
    unknown keyword, TmsNotFoundError when there is no tms."""
    binary = Path(tms) if tms is not None else find_tms(build=build)
    argv: list[str] = [os.fspath(binary), "train"]
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if resume is not None:
        if spec is not None or out is not None or overrides or shard is not None:
            raise TypeError("tmslab.train(resume=RUNDIR) takes the spec, overrides and shard from RUNDIR.partial; "
                            "give no spec, out, shard or overrides with it")
        out = resume
        argv += ["--resume", os.fspath(resume)]
    else:
        if out is None:
            raise TypeError("tmslab.train needs out=RUNDIR (the run directory to write)")
        if spec is None:
            spec = {}
        if isinstance(spec, Mapping):
            doc = dict(spec)
            doc.setdefault("name", Path(out).name[:100] or "run")
            tmp = tempfile.TemporaryDirectory(prefix="tmslab-")
            spec_path = Path(tmp.name) / "spec.json"
            spec_path.write_text(json.dumps(doc, indent=1))
        else:
            spec_path = Path(spec)
        argv += [os.fspath(spec_path), "--out", os.fspath(out)]
        argv += set_flags(overrides)
        if shard is not None:
            argv += ["--shard", str(shard)]
        if force:
            argv.append("--force")
    argv += ["--backend", backend, "--progress", "json"]
    if threads is not None:
        argv += ["--threads", str(int(threads))]
    if checkpoint_every is not None:
        argv += ["--checkpoint-every", str(int(checkpoint_every))]
    if tf32:
        argv.append("--tf32")
    if cuda_path is not None:
        argv += ["--cuda-path", cuda_path]
    argv += list(extra_args)
    try:
        run_tms(argv, desc=Path(out).name, progress=progress, echo=sys.stderr if echo else None)
    except TmsError as e:
        if tmp is None:
            raise
        # the spec file is ours, written from a dict: name it so in the message
        raise TmsError(e.message.replace(str(spec_path), "spec (dict)"), e.returncode, e.argv) from None
    finally:
        if tmp is not None:
            tmp.cleanup()
    return load(out)
