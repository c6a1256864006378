#!/usr/bin/env bash
# figures.sh [--full] [--backend auto|cpu|cuda] [--quick] [--tms PATH] [--runs DIR] [--out DIR]
#            FIGURE... | all | list
#
# Regenerates the paper's figures and the research note's, one command each: trains the
# figure's spec(s) from experiments/specs/ with build/tms into runs/figures/, then draws
# experiments/figures/FIGURE.png with the plot script in plots/ (labels come from the
# runs' manifests). Installs what is missing (scripts/install-deps.sh for tms,
# plots/install-deps.sh for matplotlib/numpy/pandas) and builds tms first.
#
#   bash experiments/figures.sh intro          # one figure
#   bash experiments/figures.sh all            # every figure, in the order of `list`
#   bash experiments/figures.sh --full uniform # at the paper's scale (for a GPU)
#
# Scale: the specs hold the paper's settings. Without --full, the figures a 2-core CPU
# cannot train in a few minutes at that size are reduced, with --set overrides listed in
# cpu_scale() below and shown in the figure's caption (which reads the run's manifest).
# --quick trains 50 steps instead of the spec's (a smoke test of the pipeline: the images
# say so in their captions; tests/test_plots.sh uses it). --tms PATH uses that binary and
# skips installing and building. --runs and --out put the runs and the images elsewhere.
# Environment: TMS_BUILD (build directory, default build), PYTHON (an interpreter that
# already has the plot packages; see plots/README.md).
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
absolute() { case $1 in /*) echo "$1" ;; *) echo "$caller/$1" ;; esac; } # paths given are the caller's

build=${TMS_BUILD:-build}
runs=runs/figures
out=experiments/figures
tms=""
full=0
quick=0
backend=auto
figures=()
all=(intro basic uniform phase privileged abs correlated note tied_untied)

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    echo "figures: ${all[*]}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --full) full=1 ;;
        --quick) quick=1 ;;
        --tms) tms=$(absolute "$2"); shift ;;
        --runs) runs=$(absolute "$2"); shift ;;
        --out) out=$(absolute "$2"); shift ;;
        --backend) backend=$2; shift ;;
        --backend=*) backend=${1#--backend=} ;;
        -h|--help) usage; exit 0 ;;
        list) printf '%s\n' "${all[@]}"; exit 0 ;;
        all) figures+=("${all[@]}") ;;
        -*) echo "figures.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) figures+=("$1") ;;
    esac
    shift
done
[ ${#figures[@]} -gt 0 ] || { usage >&2; exit 2; }
for f in "${figures[@]}"; do
    case " ${all[*]} " in *" $f "*) ;; *) echo "figures.sh: unknown figure '$f'; figures: ${all[*]}" >&2; exit 2 ;; esac
done

# ----------------------------------------------------------------------------
# set-up: dependencies, the build, the plotting Python

if [ -z "$tms" ]; then
    bash scripts/install-deps.sh >&2
    bash scripts/build.sh "$build" >/dev/null
    tms=$build/tms
fi
py=$(bash plots/install-deps.sh | tail -n 1)
mkdir -p "$runs" "$out"

# The CPU reductions (without --full): the spec's settings that change, as --set flags.
cpu_scale() {
    [ $full -eq 1 ] && return 0
    case $1 in
        uniform) echo "--set model.n_features=100 --set model.n_hidden=10" ;; # paper: n=400, m=30
        abs) echo "--set model.n_features=50 --set model.n_hidden=20" ;;      # paper: n=100, m=40
    esac
}

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

plot() { # plot SCRIPT ARGS...: python3 plots/SCRIPT.py ARGS
    local script=$1; shift
    "$py" "plots/$script.py" "$@"
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
    # shellcheck disable=SC2046
    train uniform uniform $(cpu_scale uniform)
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
    # shellcheck disable=SC2046
    train abs abs $(cpu_scale abs)
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

for f in "${figures[@]}"; do
    start=$(date +%s%N)
    "fig_$f"
    ms=$((($(date +%s%N) - start) / 1000000))
    printf 'figures: %s done in %d.%01d s (training and plotting) -> %s/%s.png\n' "$f" $((ms / 1000)) \
        $((ms % 1000 / 100)) "$out" "$f" >&2
done
