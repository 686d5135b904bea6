#!/bin/sh
# The sixth round's three training seeds, one after another on one core (docs/training.md, "Sixth round").
# Rerun to resume: a finished run (DONE) is skipped, an interrupted one continues from its last.pt.
set -e
cd "$(dirname "$0")/../.."
for cfg in nanotrack_night_r6 nanotrack_night_r6_seed1 nanotrack_night_r6_seed2; do
    run="runs/${cfg#nanotrack_night_}"
    [ -f "$run/DONE" ] && continue
    OMP_NUM_THREADS=1 MLKD_THREADS=1 nice -n 5 .venv/bin/python -m mlkd_training.trainer \
        --config "training/configs/$cfg.yaml" --run-dir "$run" --resume
done
