#!/bin/sh
# The sixth round's three training seeds on one core (docs/training.md, "Sixth round"), round-robin in
# chunks of CHUNK steps: every seed reaches step 300 before any goes on to 600, and so on, so when the
# time runs out all seeds stop at the same step of the same schedule. After each chunk the students are
# kept as runs/<run>/students_step<N>/. Rerun to resume (each trainer call resumes from its last.pt).
# Seeds 3 and 4 (CONFIGS="nanotrack_night_r6_seed3 nanotrack_night_r6_seed4") were started afterwards and
# stopped at steps 300 and 3 when the machine's load came back (not in Table II).
set -e
cd "$(dirname "$0")/../.."
CHUNK=${CHUNK:-300}
CONFIGS=${CONFIGS:-"nanotrack_night_r6 nanotrack_night_r6_seed1 nanotrack_night_r6_seed2"}
TOTAL=1200
step=$CHUNK
while [ "$step" -le "$TOTAL" ]; do
    for cfg in $CONFIGS; do
        run="runs/${cfg#nanotrack_night_}"
        [ -d "$run/students_step$step" ] && continue
        OMP_NUM_THREADS=1 MLKD_THREADS=1 nice -n 5 .venv/bin/python -m mlkd_training.trainer \
            --config "training/configs/$cfg.yaml" --run-dir "$run" --resume --max-steps "$step"
        cp -r "$run/students" "$run/students_step$step"
    done
    step=$((step + CHUNK))
done
