#!/usr/bin/env bash
# figures.sh [--full] [--backend auto|cpu|cuda] [--quick] [--tms PATH] [--runs DIR] [--out DIR]
#            FIGURE... | all | list | list-tmslab
#
# Regenerates the paper's figures and the research note's, one command each: trains the
# figure's spec(s) from experiments/specs/ with build/tms into runs/figures/, then draws
# experiments/figures/FIGURE.png with the plot script in plots/ (labels come from the
# runs' manifests), run by the project's virtualenv (tmslab.plot). Installs what is missing
# (scripts/install-deps.sh for tms, scripts/python-env.sh for .venv/) and builds tms first.
#
#   bash experiments/figures.sh intro          # one figure
#   bash experiments/figures.sh all            # every figure, in the order of `list`
#   bash experiments/figures.sh --backend cuda uniform abs  # on a GPU
#
# Scale: the specs hold the paper's settings and every figure trains at that size, on the
# CPU too (uniform's 400 -> 30 and abs's 100 -> 40 take minutes there: experiments/README.md).
# --full is accepted and changes nothing (it once undid a reduced CPU scale).
# --quick trains 50 steps instead of the spec's (a smoke test of the pipeline: the images
# say so in their captions; tests/test_plots.sh uses it). --tms PATH uses that binary and
# skips installing and building. --runs and --out put the runs and the images elsewhere.
# Environment: TMS_BUILD (build directory, default build), PYTHON (an interpreter that
# already has tmslab installed, instead of the project's .venv/; see plots/README.md).
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
absolute() { case $1 in /*) echo "$1" ;; *) echo "$caller/$1" ;; esac; } # paths given are the caller's

build=${TMS_BUILD:-build}
runs=runs/figures
out=experiments/figures
tms=""
quick=0
backend=auto
figures=()
all=(intro basic uniform phase privileged abs correlated note tied_untied scaled)
# drawn from snapshots with tmslab (python/, its virtualenv from scripts/python-env.sh): named
# one by one, not in `all` (whose images are PNGs drawn with Debian's matplotlib)
tmslab_figures=(dynamics forming perturb)

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    echo "figures: ${all[*]} ${tmslab_figures[*]}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --full) ;; # the default now (see above)
        --quick) quick=1 ;;
        --tms) tms=$(absolute "$2"); shift ;;
        --runs) runs=$(absolute "$2"); shift ;;
        --out) out=$(absolute "$2"); shift ;;
        --backend) backend=$2; shift ;;
        --backend=*) backend=${1#--backend=} ;;
        -h|--help) usage; exit 0 ;;
        list) printf '%s\n' "${all[@]}"; exit 0 ;;
        list-tmslab) printf '%s\n' "${tmslab_figures[@]}"; exit 0 ;;
        all) figures+=("${all[@]}") ;;
        -*) echo "figures.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) figures+=("$1") ;;
    esac
    shift
done
[ ${#figures[@]} -gt 0 ] || { usage >&2; exit 2; }
for f in "${figures[@]}"; do
    case " ${all[*]} ${tmslab_figures[*]} " in *" $f "*) ;;
        *) echo "figures.sh: unknown figure '$f'; figures: ${all[*]} ${tmslab_figures[*]}" >&2; exit 2 ;; esac
done

# ----------------------------------------------------------------------------
# set-up: dependencies, the build, the plotting Python

if [ -z "$tms" ]; then
    bash scripts/install-deps.sh >&2
    bash scripts/build.sh "$build" >/dev/null
    tms=$build/tms
fi
py=${PYTHON:-$(bash scripts/python-env.sh | tail -n 1)}
mkdir -p "$runs" "$out"

quick_steps() { [ $quick -eq 1 ] && echo "--set train.steps=50" || true; }

# train RUN SPEC [--set ...]: build/tms train SPEC --out runs/figures/RUN (SPEC: a path, or
# a name in experiments/specs/)
train() {
    local run=$1 spec=$2; shift 2
    case $spec in *.json) ;; *) spec=experiments/specs/$spec.json ;; esac
    echo "figures: training $run ($spec $*)" >&2
    # shellcheck disable=SC2046
    "$tms" train "$spec" --out "$runs/$run" --force --backend "$backend" $(quick_steps) "$@"
}

plot() { # plot SCRIPT ARGS...: the venv's python plots/SCRIPT.py ARGS
    local script=$1; shift
    "$py" "plots/$script.py" "$@"
}

# plot_tmslab SCRIPT ARGS...: the same with tmslab's Python (TMSLAB_PYTHON, or the project's
# virtualenv, made by scripts/python-env.sh when missing)
tpy=""
plot_tmslab() {
    local script=$1; shift
    [ -n "$tpy" ] || tpy=${TMSLAB_PYTHON:-$(bash scripts/python-env.sh | tail -n 1)}
    "$tpy" "plots/$script.py" "$@"
}

# ----------------------------------------------------------------------------
# one function per figure

fig_intro() {
    train intro intro
    plot intro "$runs/intro" --out "$out/intro.png"
}

fig_basic() {
    train basic basic
    train basic_linear basic --set model.output_activation=none
    plot basic "$runs/basic" "$runs/basic_linear" --out "$out/basic.png"
}

fig_uniform() {
    train uniform uniform
    plot uniform "$runs/uniform" --out "$out/uniform.png"
}

fig_phase() {
    train phase_2_1 phase_2_1
    train phase_3_2 phase_3_2
    plot phase "$runs/phase_2_1" "$runs/phase_3_2" --out "$out/phase.png"
}

fig_privileged() {
    train privileged privileged
    plot neurons "$runs/privileged" --out "$out/privileged.png"
}

fig_abs() {
    train abs abs
    plot neurons "$runs/abs" --out "$out/abs.png"
}

fig_correlated() {
    local names=()
    for kind in correlated anticorrelated; do
        for shape in 4_2 6_2 20_10; do
            train "${kind}_$shape" "${kind}_$shape"
            names+=("$runs/${kind}_$shape")
        done
    done
    plot correlated "${names[@]}" --out "$out/correlated.png"
}

fig_note() {
    # the research note's pictures come from the repository's pentagon and untied specs
    train note_tied experiments/pentagon.json
    train note_untied experiments/untied.json
    plot note "$runs/note_tied" "$runs/note_untied" --density 0.05 --out "$out/note.png"
}

fig_tied_untied() {
    train tied_untied_tied tied_untied
    train tied_untied_untied tied_untied --set model.decoder=untied
    train tied_untied_hidden_relu tied_untied --set model.decoder=untied --set model.hidden_activation=relu
    plot tied_untied "$runs/tied_untied_tied" "$runs/tied_untied_untied" "$runs/tied_untied_hidden_relu" \
        --out "$out/tied_untied.png" --table "$out/tied_untied.md"
}

fig_scaled() {
    # the paper's basic results scaled up (80 -> 20, importance 0.9^i), drawn like `basic`
    train scaled scaled
    plot basic "$runs/scaled" --out "$out/scaled.png"
}

# ---- from snapshots (output.snapshots), drawn with tmslab.plot.dynamics

fig_dynamics() {
    train dynamics dynamics
    plot_tmslab dynamics "$runs/dynamics" --out "$out/dynamics.png"
}

fig_forming() {
    # shellcheck disable=SC2046
    train forming forming $([ $quick -eq 1 ] && echo "--set output.snapshots=10")
    plot_tmslab animate "$runs/forming" --out "$out/forming.gif"
}

fig_perturb() {
    # feature 4's density from 0.2x to 20x the others' 0.05 (0.01 to 1) (data.relative_density, which only
    # the CPU backend draws), one run per value
    local backend=cpu names=() f
    for f in 0.2 0.4 0.6 0.8 1 1.5 2 3 5 8 12 20; do
        train "perturb_$f" perturb --set "data.relative_density=[1,1,1,1,$f]"
        names+=("$runs/perturb_$f")
    done
    plot_tmslab perturb "${names[@]}" --feature 4 --out "$out/perturb.png"
}

for f in "${figures[@]}"; do
    start=$(date +%s%N)
    "fig_$f"
    ms=$((($(date +%s%N) - start) / 1000000))
    ext=png; [ "$f" = forming ] && ext=gif
    printf 'figures: %s done in %d.%01d s (training and plotting) -> %s/%s.%s\n' "$f" $((ms / 1000)) \
        $((ms % 1000 / 100)) "$out" "$f" "$ext" >&2
done
