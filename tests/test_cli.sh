#!/usr/bin/env bash
# test_cli.sh TMS SCRATCH PYTHON [BACKEND]: the tms binary end to end, as a user runs it, on
# BACKEND (cpu, the default, or cuda; every `tms train` passes --backend BACKEND).
#   - --version / --help; bad specs exit 2 with a message naming the field, leaving no run directory;
#   - a small untied run: the .npy files load in numpy with the right shapes, the CSVs agree with
#     the weights, the PNGs decode at the right size, the manifest is complete and names BACKEND;
#   - cpu: the same spec at 1 and 2 threads gives bitwise-identical parameters; cuda: the same
#     spec trained twice does (the GPU path is deterministic);
#   - every model variant (decoder x hidden activation x output activation x bias: 16, and the 4
#     with bias and a hidden ReLU but no hidden bias) trains under --set, to finite losses;
#   - render redraws the images; an existing run directory is refused without --force.
set -u
tms=$1; scratch=$2; py=$3; backend=${4:-cpu}
case $backend in cpu|cuda) ;; *) echo "test_cli: BACKEND must be cpu or cuda, not '$backend'" >&2; exit 2 ;; esac
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch" || exit 1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$tms" --version | grep -q '^tms [0-9]' || fail "--version"
"$tms" --help >/dev/null || fail "--help exits nonzero"
"$tms" train --help | grep -q -- '--set' || fail "train --help lists --set"
"$tms" frobnicate 2>/dev/null; [ $? -eq 2 ] || fail "unknown command must exit 2"

cat > good.json <<'JSON'
{"name": "cli", "model": {"n_features": 6, "n_hidden": 2, "decoder": "untied", "hidden_activation": "relu"},
 "data": {"density": [1, 0.1], "importance_decay": 0.9, "batch_size": 256},
 "train": {"steps": 300, "seeds": 2, "log_every": 50}, "output": {"max_images": 3}}
JSON

# bad input: exit 2, a message naming the field, and no run directory left behind
bad() { # name expected-fragment spec-text [extra args]
    local name=$1 frag=$2 text=$3; shift 3
    printf '%s' "$text" > "bad_$name.json"
    local named=0 a
    for a in "$@"; do [ "$a" = --backend ] && named=1; done
    [ $named -eq 1 ] || set -- "$@" --backend "$backend"
    "$tms" train "bad_$name.json" --out "run_$name" "$@" 2> "err_$name.txt"
    local rc=$?
    [ $rc -eq 2 ] || fail "$name: exit code $rc, expected 2"
    grep -qF -- "$frag" "err_$name.txt" || fail "$name: message '$(cat "err_$name.txt")' lacks '$frag'"
    [ ! -e "run_$name" ] && [ ! -e "run_$name.partial" ] || fail "$name: left a run directory"
}
bad density 'data.density: 2 is not allowed; expected a number in (0, 1]' '{"model": {"n_features": 5, "n_hidden": 2}, "data": {"density": 2}}'
bad unknown 'optimizer.learning_rate: unknown field' '{"model": {"n_features": 5, "n_hidden": 2}, "optimizer": {"learning_rate": 0.1}}'
bad choice 'model.hidden_activation: "gelu" is not allowed; expected one of: none, relu' '{"model": {"n_features": 5, "n_hidden": 2, "hidden_activation": "gelu"}}'
bad json 'not valid JSON' '{"model": {"n_features": 5, "n_hidden": 2},}'
bad missing 'model: missing' '{"data": {"density": 0.1}}'
bad set 'train.steps: 0 is not allowed; expected an integer from 1' '{"model": {"n_features": 5, "n_hidden": 2}}' --set train.steps=0
bad backend '--backend tpu: expected one of: auto, cpu, cuda' '{"model": {"n_features": 5, "n_hidden": 2}}' --backend tpu
"$tms" train does-not-exist.json --out run_nofile --backend "$backend" 2> err_nofile.txt; rc=$?
[ $rc -eq 2 ] && grep -q 'cannot open does-not-exist.json' err_nofile.txt && [ ! -e run_nofile ] || fail "missing spec file: rc $rc"

# a real run, then its outputs read back by numpy
"$tms" train good.json --out run1 --backend "$backend" --threads 1 --quiet || fail "train exit code"
"$tms" train good.json --out run2 --backend "$backend" --threads 2 2> progress.txt || fail "train at 2 threads"
grep -q 'step 300/300' progress.txt || fail "no progress lines in a non-terminal log"
# --progress: json is one object per line (the other lines are tms's messages), steps
# increasing to the last, whose loss is the mean of the last logged training losses
# (loss.npy's last column); lines, bar and none; bad values, twice, and with --quiet: exit 2
"$tms" train --help | grep -q -- '--progress MODE' || fail "train --help lists --progress"
"$tms" train good.json --out run_json --backend "$backend" --progress json 2> progress_json.txt || fail "--progress json"
"$py" - run_json progress_json.txt <<'PY' || fail "--progress json output"
import json, sys
import numpy as np
run, log = sys.argv[1], sys.argv[2]
objs = []
for line in open(log):
    # the messages (tms: training ..., done ..., wrote ...; the emulated CUDA's statistics)
    # are plain lines; the progress is only JSON, one object a line
    assert not line.startswith("step ") and "\r" not in line, line
    if not line.startswith("{"):
        continue
    o = json.loads(line)
    assert set(o) == {"step", "steps", "loss", "steps_per_s", "elapsed_s", "eta_s"}, o
    objs.append(o)
steps = [o["step"] for o in objs]
assert objs and all(o["steps"] == 300 for o in objs), objs
assert steps == sorted(set(steps)) and steps[-1] == 300 and 0 < steps[0], steps
assert objs[-1]["eta_s"] == 0 and objs[-1]["steps_per_s"] > 0, objs[-1]
L = np.load(f"{run}/loss.npy").astype(np.float64)  # (instances, logs): the last logged losses
want = L[np.isfinite(L[:, -1]), -1].mean()
assert abs(objs[-1]["loss"] - want) <= 1e-7 * want, (objs[-1]["loss"], want)
print(f"progress json: {len(objs)} objects, final loss {objs[-1]['loss']} = mean of loss.npy[:, -1] {want:.9g}")
PY
"$tms" train good.json --out run_none --backend "$backend" --progress none 2> progress_none.txt || fail "--progress none"
! grep -q -e '^step' -e '^{' -e $'\r' progress_none.txt && grep -q '^tms: done' progress_none.txt || fail "--progress none: $(cat progress_none.txt)"
"$tms" train good.json --out run_bar --backend "$backend" --progress bar 2> progress_bar.txt || fail "--progress bar"
grep -q $'\r\\[#*' progress_bar.txt && grep -q '300/300' progress_bar.txt || fail "--progress bar draws no bar"
"$tms" train good.json --out run_lines --backend "$backend" --progress lines 2> progress_lines.txt || fail "--progress lines"
# a line at each 10% mark a chunk (log_every = 50 steps) crosses, and the last: 50, 100, 150, 200, 250, 300
[ "$(grep '^step [0-9]*/300 ' progress_lines.txt | cut -d' ' -f2 | tr '\n' ' ')" = "50/300 100/300 150/300 200/300 250/300 300/300 " ] ||
    fail "--progress lines: $(cat progress_lines.txt)"
for args in "--progress xml" "--progress JSON" "--progress" "--progress json --progress none" "--quiet --progress none"; do
    # shellcheck disable=SC2086
    "$tms" train good.json --out run_badprogress --backend "$backend" $args 2> err_progress.txt; rc=$?
    [ $rc -eq 2 ] && [ ! -e run_badprogress ] && grep -q -- '--progress' err_progress.txt ||
        fail "$args: rc $rc, $(cat err_progress.txt)"
done
# cpu: the thread count does not change the result; cuda (--threads is ignored there): two
# runs of the same spec are bit-identical
[ "$backend" = cpu ] && what="1 and 2 threads differ" || what="two identical cuda runs differ"
for f in W.npy W2.npy b1.npy b.npy optimizer/adam_m_W.npy optimizer/adam_v_b.npy eval_loss.npy; do
    cmp -s "run1/$f" "run2/$f" || fail "$what in $f"
done
[ ! -e run1.partial ] || fail "run1.partial left behind"

"$py" - run1 "$backend" <<'PY' || fail "numpy checks"
import csv, json, struct, sys
import numpy as np
d, backend = sys.argv[1:3]
I, n, m = 4, 6, 2
man = json.load(open(f"{d}/manifest.json"))
assert man["status"] == "complete" and man["instances"] == I and man["steps_completed"] == 300, man
assert man["spec"]["model"]["decoder"] == "untied" and man["backend"] == backend, (man["backend"], backend)
assert man["tensors"] == {"W": [I, m, n], "W2": [I, n, m], "b1": [I, m], "b": [I, n]}, man["tensors"]
W = np.load(f"{d}/W.npy"); W2 = np.load(f"{d}/W2.npy"); b1 = np.load(f"{d}/b1.npy"); b = np.load(f"{d}/b.npy")
assert W.dtype == np.float32 and W.shape == (I, m, n) and W2.shape == (I, n, m), (W.shape, W2.shape)
assert b1.shape == (I, m) and b.shape == (I, n) and np.isfinite(W).all()
for t in ("W", "W2", "b1", "b"):
    assert np.load(f"{d}/optimizer/adam_v_{t}.npy").shape == np.load(f"{d}/{t}.npy").shape
rows = list(csv.DictReader(open(f"{d}/instances.csv")))
assert len(rows) == I and np.allclose([float(r["density"]) for r in rows], [1, 1, 0.1, 0.1])
for i, r in enumerate(rows):
    Wi = W[i].astype(np.float64)
    dstar = m / (Wi ** 2).sum()
    assert abs(float(r["dims_per_feature"]) - dstar) < 1e-5 * dstar, (r, dstar)
    assert int(r["n_represented"]) == int((np.linalg.norm(Wi, axis=0) > 0.5).sum())
    assert abs(float(r["loss_sum_features"]) - n * float(r["loss_mean_features"])) < 1e-6
assert sum(int(r["best_of_replicates"]) for r in rows) == 2
feats = list(csv.DictReader(open(f"{d}/features.csv")))
assert len(feats) == I * n
for f in feats:
    i, j = int(f["instance"]), int(f["feature"])
    Wi = W[i].astype(np.float64)
    norms = np.linalg.norm(Wi, axis=0)
    unit = Wi[:, j] / norms[j]
    dots = unit @ Wi
    sup = (dots ** 2).sum() - norms[j] ** 2
    assert abs(float(f["norm"]) - norms[j]) < 1e-5
    assert abs(float(f["superposition"]) - sup) < 1e-4 * (1 + sup)
    assert abs(float(f["dimensionality"]) - norms[j] ** 2 / (dots ** 2).sum()) < 1e-4
    assert abs(float(f["importance"]) - 0.9 ** j) < 1e-6 and abs(float(f["bias"]) - b[i, j]) < 1e-6
loss = list(csv.DictReader(open(f"{d}/loss.csv")))
# instance-major: each instance's steps 0, 50, ..., 250 in order
assert len(loss) == 6 * I and [r["step"] for r in loss[:6]] == ["0", "50", "100", "150", "200", "250"]
assert [int(r["instance"]) for r in loss[::6]] == list(range(I))
L = np.load(f"{d}/loss.npy")
assert L.shape == (I, 6) and np.allclose(L.ravel(), [float(r["loss_mean_features"]) for r in loss], rtol=1e-6)
assert (L[:, -1] < L[:, 0]).all(), L
E = np.load(f"{d}/eval_loss.npy"); D = np.load(f"{d}/diverged_step.npy")
assert E.shape == (I,) and D.dtype == np.int64 and (D == 0).all()
assert np.allclose(E, [float(r["loss_mean_features"]) for r in rows], rtol=1e-6)
def png_size(path):
    head = open(path, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])
import os
# images: the best replicate of each of the 2 grid points (max_images 3 does not bind)
imgs = sorted(os.listdir(f"{d}/images"))
best = sorted(f"instance_{int(r['instance']):05d}.png" for r in rows if r["best_of_replicates"] == "1")
assert len(best) == 2 and imgs == best, (imgs, best)
w, h = png_size(f"{d}/images/{best[0]}")
assert w > 600 and h > 300, (w, h)
# contact sheet: best replicate of each of the 2 grid points: a 44 px header over 2 columns of
# 200 x 244 thumbnails, at least 640 px wide
assert png_size(f"{d}/contact_sheet.png") == (640, 288), png_size(f"{d}/contact_sheet.png")
print("numpy checks passed")
PY

# every model combination trains and writes finite parameters of the documented shapes; with
# bias and a hidden ReLU also without the hidden bias (model.hidden_bias false)
variants=()
for dec in tied untied; do for hid in none relu; do for outact in relu none; do for bias in true false; do
    variants+=("$dec $hid $outact $bias true")
    [ $hid = relu ] && [ $bias = true ] && variants+=("$dec $hid $outact $bias false")
done; done; done; done
for v in "${variants[@]}"; do
    read -r dec hid outact bias hbias <<< "$v"
    out="combo_${dec}_${hid}_${outact}_${bias}_${hbias}"
    "$tms" train good.json --out "$out" --quiet --backend "$backend" --set train.steps=40 --set train.seeds=1 \
        --set data.batch_size=64 --set model.decoder=$dec --set model.hidden_activation=$hid \
        --set model.output_activation=$outact --set model.bias=$bias --set model.hidden_bias=$hbias \
        --set output.images=false || fail "combination $out does not train"
    "$py" - "$out" $dec $hid $bias $hbias "$backend" <<'PY' || fail "combination $out: outputs"
import json, os, sys
import numpy as np
d, dec, hid, bias, hbias, backend = sys.argv[1:]
W = np.load(f"{d}/W.npy"); assert W.shape == (2, 2, 6) and np.isfinite(W).all()
assert os.path.exists(f"{d}/W2.npy") == (dec == "untied")
assert os.path.exists(f"{d}/b.npy") == (bias == "true")
assert os.path.exists(f"{d}/b1.npy") == (bias == "true" and hid == "relu" and hbias == "true")
man = json.load(open(f"{d}/manifest.json"))
assert man["status"] == "complete" and man["backend"] == backend, (man["status"], man["backend"])
L = np.load(f"{d}/loss.npy"); E = np.load(f"{d}/eval_loss.npy")
assert np.isfinite(L).all() and np.isfinite(E).all() and (E > 0).all(), (L, E)
PY
done
[ ${#variants[@]} -eq 20 ] || fail "expected 20 model variants, ran ${#variants[@]}"

# render redraws from the weights: same pixels
img1=$(ls run1/images | head -1)
cp "run1/images/$img1" before.png
rm "run1/images/$img1" run1/contact_sheet.png
"$tms" render run1 2>/dev/null || fail "render exit code"
cmp -s before.png "run1/images/$img1" || fail "render did not redraw the same image"
[ -f run1/contact_sheet.png ] || fail "render did not redraw the contact sheet"
"$tms" render nowhere 2>/dev/null; [ $? -eq 2 ] || fail "render of a missing run must exit 2"
# without its font file the renderer says which file and which package (exit 1)
TMS_FONT=/nonexistent/DejaVuSans.ttf "$tms" render run1 2> err_font.txt; rc=$?
[ $rc -eq 1 ] && grep -qF /nonexistent/DejaVuSans.ttf err_font.txt && grep -qF fonts-dejavu-core err_font.txt \
    || fail "render without the font: rc $rc, $(cat err_font.txt)"

# which instances get pictures: a sweep of 10 grid points x 2 seeds (density slowest) with
# max_images 4 draws the best replicate of grid points 0, 3, 6 and 9 (spread over the grid,
# every density but one); render --instances redraws any selection, the sheet follows it
cat > sel.json <<'JSON'
{"name": "sel", "model": {"n_features": 5, "n_hidden": 2},
 "data": {"density": [1, 0.3, 0.1, 0.03, 0.01], "batch_size": 64},
 "optimizer": {"lr": [1e-3, 3e-3]}, "train": {"steps": 30, "seeds": 2}, "output": {"max_images": 4}}
JSON
"$tms" train sel.json --out sel --quiet --backend "$backend" || fail "selection sweep does not train"
"$py" - <<'PY' || fail "default selection"
import csv, os
rows = list(csv.DictReader(open("sel/instances.csv")))
best = {int(r["grid_point"]): int(r["instance"]) for r in rows if r["best_of_replicates"] == "1"}
want = sorted(f"instance_{best[g]:05d}.png" for g in (0, 3, 6, 9))
assert sorted(os.listdir("sel/images")) == want, (sorted(os.listdir("sel/images")), want)
PY
sheet_size() { "$py" -c "import struct,sys; print(*struct.unpack('>II', open(sys.argv[1],'rb').read(24)[16:24]))" "$1"; }
[ "$(sheet_size sel/contact_sheet.png)" = "640 532" ] || fail "sheet of 4: $(sheet_size sel/contact_sheet.png)"
rm -r sel/images
"$tms" render sel --instances 0,5,7-9 2> err_sel.txt || fail "render --instances 0,5,7-9: $(cat err_sel.txt)"
[ "$(ls sel/images | tr '\n' ' ')" = "instance_00000.png instance_00005.png instance_00007.png instance_00008.png instance_00009.png " ] \
    || fail "render --instances 0,5,7-9 drew $(ls sel/images | tr '\n' ' ')"
grep -qF "drew 5 instance images" err_sel.txt || fail "render --instances says $(cat err_sel.txt)"
[ "$(sheet_size sel/contact_sheet.png)" = "640 532" ] || fail "sheet of 5: $(sheet_size sel/contact_sheet.png)"
rm -r sel/images
"$tms" render sel --instances best 2> err_sel.txt && [ "$(ls sel/images | wc -l)" -eq 10 ] \
    || fail "render --instances best: $(ls sel/images | wc -l) images, $(cat err_sel.txt)"
"$tms" render sel --instances all --threads 1 2> err_sel.txt && [ "$(ls sel/images | wc -l)" -eq 20 ] \
    && grep -qF "drew 20 instance images" err_sel.txt || fail "render --instances all: $(cat err_sel.txt)"
[ "$(sheet_size sel/contact_sheet.png)" = "1000 1020" ] || fail "sheet of 20: $(sheet_size sel/contact_sheet.png)"
# bad selections: exit 2, the flag and the value named, nothing drawn
rm -r sel/images sel/contact_sheet.png
for v in 20 3,3 5-2 '' 1,,2 1, +1 1- abc 0x1 ' 1' 1-2-3 99999999999999999999 -1; do
    "$tms" render sel --instances "$v" 2> err_sel.txt; rc=$?
    [ $rc -eq 2 ] && grep -qF -- "--instances" err_sel.txt && grep -qF -- "$v" err_sel.txt \
        || fail "render --instances '$v': rc $rc, $(cat err_sel.txt)"
done
"$tms" render sel --instances 1 --instances 2 2> err_sel.txt; rc=$?
[ $rc -eq 2 ] && grep -qF "given twice" err_sel.txt || fail "--instances twice: rc $rc, $(cat err_sel.txt)"
"$tms" render sel --instances 2> err_sel.txt; rc=$?
[ $rc -eq 2 ] && grep -qF "needs a value" err_sel.txt || fail "--instances without a value: rc $rc"
[ ! -e sel/images ] && [ ! -e sel/contact_sheet.png ] || fail "a refused render drew something"

# an existing run directory is refused, and replaced only with --force
"$tms" train good.json --out run1 --backend "$backend" --quiet 2> err_exists.txt; rc=$?
[ $rc -eq 2 ] && grep -q 'already exists' err_exists.txt || fail "existing run dir: rc $rc"
"$tms" train good.json --out run1 --backend "$backend" --quiet --force --set train.steps=100 || fail "--force"
"$py" -c "import json,sys; assert json.load(open('run1/manifest.json'))['steps_completed'] == 100" || fail "--force did not replace"

# a runtime failure (an output path that cannot be created) exits 1 and leaves nothing complete
touch blocker
"$tms" train good.json --out blocker/run --backend "$backend" --quiet 2> err_rt.txt; rc=$?
[ $rc -eq 1 ] && grep -q 'cannot create directory' err_rt.txt || fail "unwritable output: rc $rc $(cat err_rt.txt)"

if [ $fails -ne 0 ]; then echo "test_cli ($backend): $fails failure(s)"; exit 1; fi
echo "test_cli ($backend): all checks passed"
