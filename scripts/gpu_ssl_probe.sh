#!/usr/bin/env bash
# SSL speed probe for one GPU call (see docs/ssl.md "Speed options"). Writes at most 6 files under $OUT:
#   ab.json / ab.log     (i) a torch.profiler table of PROFILE_STEPS steps of every variant (in ab.json
#                        "profiles"; the tables also in ab.log) and (ii) the A/B: median epoch time per variant
#   run.json / run.log   (iii) SimSiam with the fastest variant, 200-epoch schedule, kNN every 20 epochs,
#                        stopped by --max-minutes (the smaller of SSL_MINUTES and what is left of PROBE_MINUTES)
#   summary.txt          the two tables
# Env: SSL_MINUTES (6), PROBE_MINUTES (9: total budget), AB_EPOCHS (4), PROFILE_STEPS (20),
#      PROFILE_AFTER (20 warm-up steps), VARIANTS (base,fuse,fuse+fused_opt,fuse+fused_opt+caug+ro), DATA (.devcarry/cifar10_jpeg.npz),
#      PROBE_SMOKE=1: tiny CPU run (--limit 512, 1 epoch, tiny_cnn, --device cpu) to check the script itself.
set -euo pipefail
OUT=${OUT:?set OUT to the output folder}
mkdir -p "$OUT"
export PYTHONPATH=.
DATA=${DATA:-.devcarry/cifar10_jpeg.npz}
SSL_MINUTES=${SSL_MINUTES:-6}
PROBE_MINUTES=${PROBE_MINUTES:-9}
AB_EPOCHS=${AB_EPOCHS:-4}
PROFILE_STEPS=${PROFILE_STEPS:-20}
PROFILE_AFTER=${PROFILE_AFTER:-20}
VARIANTS=${VARIANTS:-base,fuse,fuse+fused_opt,fuse+fused_opt+caug+ro}
EPOCHS=200
KNN_EVERY=20
EXTRA=()
if [[ "${PROBE_SMOKE:-0}" == 1 ]]; then
  EXTRA=(--limit 512 --device cpu --backbone tiny_cnn --batch-size 128 --compile off)
  AB_EPOCHS=1; EPOCHS=1; KNN_EVERY=1; PROFILE_STEPS=2; PROFILE_AFTER=1
fi
[[ -f "$DATA" ]] || { echo "missing $DATA" >&2; exit 2; }
start=$(date +%s)
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' >&2

# (i) + (ii): profile + A/B in one process (one decode; the inductor cache is shared by the variants)
python3 -m curator bench ssl-throughput --data "$DATA" --methods simsiam --variants "$VARIANTS" \
  --epochs "$AB_EPOCHS" --no-knn --profile-steps "$PROFILE_STEPS" --profile-after "$PROFILE_AFTER" \
  --out "$OUT/ab.json" "${EXTRA[@]}" > "$OUT/summary.txt" 2> "$OUT/ab.log" || { tail -30 "$OUT/ab.log" >&2; exit 1; }
cat "$OUT/summary.txt"
BEST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best_variant"])' "$OUT/ab.json")
elapsed=$(( $(date +%s) - start ))
# leave ~75 s for decode, compile of the first epoch overshoot and the final kNN
MINUTES=$(python3 -c "print(round(max(0.5, min($SSL_MINUTES, ($PROBE_MINUTES*60 - $elapsed - 75)/60)), 2))")
echo "A/B took ${elapsed}s; best variant: $BEST; SimSiam run budget ${MINUTES} min" | tee -a "$OUT/summary.txt"

# (iii) SimSiam with the best variant for as much of the 200-epoch schedule as fits
python3 -m curator bench ssl-throughput --data "$DATA" --methods simsiam --variants "$BEST" \
  --epochs "$EPOCHS" --knn-every "$KNN_EVERY" --max-minutes "$MINUTES" \
  --out "$OUT/run.json" "${EXTRA[@]}" >> "$OUT/summary.txt" 2> "$OUT/run.log" || { tail -30 "$OUT/run.log" >&2; exit 1; }
echo "total $(( $(date +%s) - start ))s" | tee -a "$OUT/summary.txt"
tail -4 "$OUT/summary.txt"
