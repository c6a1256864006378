#!/usr/bin/python3
"""make_corpus.py TMS: regenerate the committed seed corpus under tests/fuzz/corpus/.

corpus/spec/    every spec in experiments/, plus edge cases, some with --set overrides
                (after a NUL byte, NUL-separated: fuzz_spec.c's input format)
corpus/npy/     .npy files written by tms and by numpy (other dtypes, orders, header
                versions, shapes), each behind fuzz_npy.c's 4-byte prefix
corpus/rundir/  manifests of small runs tms trained (several model shapes and a shard),
                each with a checkpoint.json, some with a damaged checkpoint file
                (fuzz_rundir.c's input format)
Run from anywhere; it needs numpy and a built tms (argument 1).
"""
import glob, io, json, os, shutil, subprocess, sys, tempfile
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
tms = os.path.abspath(sys.argv[1])
corpus = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


for target in ("spec", "npy", "rundir"):
    shutil.rmtree(os.path.join(corpus, target), ignore_errors=True)

# ---- specs
for p in sorted(glob.glob(os.path.join(root, "experiments", "*.json")) +
                glob.glob(os.path.join(root, "experiments", "specs", "*.json"))):
    put("spec", os.path.basename(p), open(p, "rb").read())
small = '{"model": {"n_features": 5, "n_hidden": 2}}'
edge = {
    "minimal.json": small,
    "every_field.json": json.dumps({
        "name": "all", "model": {"n_features": 6, "n_hidden": 3, "decoder": "untied", "hidden_activation": "relu",
                                 "output_activation": "none", "bias": True, "hidden_bias": False},
        "data": {"density": [1, 0.5], "importance": [[1, 1, 1, 1, 1, 1], [1, 0.9, 0.8, 0.7, 0.6, 0.5]],
                 "batch_size": 64, "task": "abs", "feature_sets": {"kind": "anticorrelated", "size": 2}},
        "optimizer": {"name": "adam", "lr": [1e-3, 1e-2], "betas": [0.8, 0.99], "eps": 1e-7,
                      "weight_decay": [0, 0.1], "schedule": "cosine", "warmup_steps": 5},
        "train": {"steps": 20, "seed": [0, 9007199254740992], "seeds": 2, "log_every": 3, "eval_samples": 8192},
        "output": {"images": False, "contact_sheet": True, "max_images": 4}}),
    "correlated.json": '{"model": {"n_features": 6, "n_hidden": 2}, "data": {"feature_sets": {"kind": "correlated", "size": 3}}}',
    "trailing.json": small + " trailing // comment",
    "dup.json": '{"model": {"n_features": 5, "n_hidden": 2, "n_hidden": 3}}',
    "unicode.json": '{"name": "a\\u0000b", "model": {"n_features": 5, "n_hidden": 2}}',
    "huge_numbers.json": '{"model": {"n_features": 1e400, "n_hidden": -0}, "optimizer": {"lr": 1e30}}',
    "deep.json": "[" * 200 + "]" * 200,
    "lists.json": '{"model": {"n_features": 2, "n_hidden": 1}, "data": {"density": [1,0.5,0.25]}, '
                  '"optimizer": {"lr": [0.1,0.01], "weight_decay": [0,0.1]}, "train": {"seed": [1,2,3], "seeds": 3}}',
    "not_object.json": "[1, 2, 3]",
    "empty.json": "",
}
for name, text in edge.items():
    put("spec", name, text)
overrides = {
    "set_steps": [small, "train.steps=10", "data.density=[1,0.1]"],
    "set_bare_word": [small, "model.decoder=untied", "model.hidden_activation=relu"],
    "set_lenient": [small, "data.density=1,0.1", "train.steps=10_000", "optimizer.lr=1e-3,1e-2"],
    "set_bad": [small, "train", "=1", ".x=1", "model.=2", "a.b.c=1", "name.x=1", "output.images"],
    "set_new_section": ['{"model": {"n_features": 5, "n_hidden": 2}, "data": 3}', "data.density=0.5"],
    "set_seed": [small, "train.seed=9007199254740993", "train.seeds=100000"],
}
for name, parts in overrides.items():
    put("spec", name, "\0".join(parts))

# ---- .npy files: fuzz_npy.c's prefix (dtype and rank byte, three dimensions) + the file
def npy_seed(name, arr, i64, shape, raw=None):
    buf = io.BytesIO()
    if raw is None:
        np.save(buf, arr)
        raw = buf.getvalue()
    dims = list(shape) + [0] * (3 - len(shape))
    put("npy", name, bytes([(i64 & 1) | ((len(shape) - 1) << 1)] + dims) + raw)

rng = np.random.default_rng(0)
npy_seed("f4_3d", rng.standard_normal((2, 3, 4)).astype("<f4"), 0, (2, 3, 4))
npy_seed("f4_2d", rng.standard_normal((3, 5)).astype("<f4"), 0, (3, 5))
npy_seed("f4_1d", rng.standard_normal(7).astype("<f4"), 0, (7,))
npy_seed("f4_empty", np.zeros((0, 3), "<f4"), 0, (0, 3))
npy_seed("i8_1d", np.arange(5, dtype="<i8"), 1, (5,))
npy_seed("f4_fortran", np.asfortranarray(rng.standard_normal((3, 4)).astype("<f4")), 0, (3, 4))
npy_seed("f4_bigendian", rng.standard_normal((2, 2)).astype(">f4"), 0, (2, 2))
npy_seed("f8_wrong_dtype", rng.standard_normal((2, 2)), 0, (2, 2))
npy_seed("f4_wrong_shape", rng.standard_normal((2, 5)).astype("<f4"), 0, (5, 2))
buf = io.BytesIO()
np.lib.format.write_array(buf, np.ones((2, 3), "<f4"), version=(2, 0))
npy_seed("f4_version2", None, 0, (2, 3), buf.getvalue())
good = io.BytesIO(); np.save(good, np.ones((2, 3), "<f4")); good = good.getvalue()
npy_seed("f4_truncated", None, 0, (2, 3), good[:-5])
npy_seed("f4_trailing", None, 0, (2, 3), good + b"\0\0\0\0")
npy_seed("f4_header_only", None, 0, (2, 3), good[:64])
# the same array with the header dict in another order and spacing: numpy reads it
hdr = b"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}"
hdr = hdr + b" " * (64 - 10 - len(hdr) - 1) + b"\n"
npy_seed("f4_reordered_header", None, 0, (2, 3),
         b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + np.ones((2, 3), "<f4").tobytes())

# ---- run directories: tms trains small runs; their manifests seed fuzz_rundir
tmp = tempfile.mkdtemp()
try:
    runs = {
        "tied": small,
        "untied_relu": '{"model": {"n_features": 4, "n_hidden": 2, "decoder": "untied", "hidden_activation": "relu"}}',
        "nobias_lists": '{"model": {"n_features": 3, "n_hidden": 2, "bias": false}, "data": {"density": [1, 0.1]}, '
                        '"train": {"seeds": 2}}',
        "abs_sets": '{"model": {"n_features": 4, "n_hidden": 2, "hidden_activation": "relu"}, '
                    '"data": {"task": "abs", "feature_sets": {"kind": "correlated", "size": 2}}}',
    }
    for name, text in runs.items():
        for shard in ([None, "1/2"] if name == "nobias_lists" else [None]):
            spec = os.path.join(tmp, name + ".json")
            open(spec, "w").write(text)
            out = os.path.join(tmp, name + (shard or "").replace("/", "of"))
            cmd = [tms, "train", spec, "--out", out, "--quiet", "--set", "train.steps=20",
                   "--set", "output.images=false", "--set", "output.contact_sheet=false", "--threads", "1"]
            if shard:
                cmd += ["--shard", shard]
            subprocess.run(cmd, check=True)
            manifest = open(os.path.join(out, "manifest.json"), "rb").read()
            tag = name + ("_shard" if shard else "")
            put("rundir", tag, manifest + b"\0" + b'{"step": 10, "wall_seconds": 0.25}\n')
            if name == "tied" and not shard:
                w = open(os.path.join(out, "W.npy"), "rb").read()
                put("rundir", "tied_damaged_W", manifest + b"\0" + b'{"step": 20, "wall_seconds": 1e300}\n' +
                    b"\0\0" + w[:-3] + b"\xff\xff\xff")
                put("rundir", "tied_step_edited", manifest + b"\0" + b'{"step": 1e30, "wall_seconds": -1}\n')
                put("rundir", "tied_no_checkpoint_json", manifest + b"\0")
finally:
    shutil.rmtree(tmp)
print("corpus:", {t: len(os.listdir(os.path.join(corpus, t))) for t in ("spec", "npy", "rundir")})
