#!/usr/bin/env bash
# The GPU runs quoted in RESULTS.md, as sent to the device machine (an NVIDIA H200 over Vulkan, Python 3.12
# with torch+CUDA and transformers there) from this checkout's root, with .gl (Debian's Vulkan/GL loader
# debs), .whl (cp312 wheels of wgpu and its pure-Python deps) and .ort (onnxruntime-webgpu) carried.
#   bash benchmarks/h200.sh [STEP ...]     steps: tune ops models whisper replay webnn (default: all)
# Results (tables + JSON) go to $OUT (or ./h200-out).
set -uo pipefail
OUT="${OUT:-$PWD/h200-out}"; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
[ -d .ort ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/ort .ort/*.whl
export PYTHONPATH="$PWD:/tmp/site:/tmp/ort" PYTHONUNBUFFERED=1 XDG_RUNTIME_DIR=/tmp/xdg-accelkit
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ACCELKIT_CACHE=/tmp/accelkit-cache
ak() { python3 -m accelkit.cli "$@"; }
steps=("${@:-tune ops models whisper replay webnn}"); steps=(${steps[@]})
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
for s in "${steps[@]}"; do
  echo "== $s $(date -u +%FT%TZ)"
  case "$s" in
    tune)    ak tune --no-progress 2>&1 | tail -5 ;;
    ops)     ak bench ops --device webgpu:0 --sizes 1024,4096 --dtype float32,float16 --no-progress --json "$OUT/ops.json" > "$OUT/ops.txt" 2>&1; tail -40 "$OUT/ops.txt" ;;
    models)  ak bench models --device webgpu:0 --size base --model bert,vit --batch 1,32 --dtype float32,float16 --repeat 20 --no-cpu-references --no-progress --json "$OUT/models.json" > "$OUT/models.txt" 2>&1; cat "$OUT/models.txt" ;;
    whisper) ak bench models --device webgpu:0 --size base --model whisper --batch 1 --no-cpu-references --no-progress --json "$OUT/whisper.json" > "$OUT/whisper.txt" 2>&1; cat "$OUT/whisper.txt" ;;
    replay)  ak bench replay --json "$OUT/replay.json" > "$OUT/replay.txt" 2>&1; tail -20 "$OUT/replay.txt" ;;
    webnn)   ak bench webnn --device webgpu:0 --json "$OUT/webnn.json" > "$OUT/webnn.txt" 2>&1; tail -20 "$OUT/webnn.txt" ;;
  esac
done
