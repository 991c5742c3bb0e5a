#!/usr/bin/env bash
# The device check's runner: copied by scripts/device-check.sh into the bundle
# as run.sh, next to bundle.tar.xz, and run on the target machine from a
# repository checkout (its tests/data and models). Needs only bash, coreutils,
# tar and xz there; python3 writes the report (a plain one without it) and,
# with torch and CUDA, times torch beside us.
#
#   run.sh [--quick] [--driver ICD.json] [--repo DIR] [--out DIR] [--jobs N]
#          [--peak-gflops X] [--peak-gflops-f16 X] [--peak-gbs X] [--limit PHASE=SECONDS]...
#
# Phases, each under its own time limit (a phase that hangs is cut there,
# reported as such, and the others still run):
#   info    vkformer-info, text and --json: the device and its capabilities
#   tests   every suite of the ctest list (clamped-capability reruns
#           included) with the validation layer and synchronization
#           validation: failures and validation messages counted
#   ops     vkformer-bench ops --json (every op and variant, fp32 and fp16)
#   model   vkformer-bench model --json: ViT-B/16, BERT-base, MiniLM-L6,
#           GPT-2 124M (prefill, decode), CLIP B/32; fp32 and fp16
#   torch   where python3 has torch with CUDA: tools/bench_hf_model.py on the
#           same shapes (fp32, fp16, fp16 with torch.compile) and torch's
#           matmul on the ops' GEMM shapes
# Writes report.md, report.json and the raw results under $OUT when it is
# set, else DIR/out (at most 8 files: what a device call brings back). The
# --peak-* figures (the device's datasheet: fp32 and fp16 GFLOP/s, memory
# GB/s) put every op's rate as a fraction of the peak.
# The driver: the loader's default search, else NVIDIA's
# /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json, else --driver.
# --quick: eight suites and one shape per bench (under a minute on lavapipe).
# VKF_DEVICE_CHECK_HANG=PHASE makes that phase hang (to test the limits).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
quick=0 driver= repo= out=${OUT:-} jobs= peak_gflops=0 peak_gflops_f16=0 peak_gbs=0 user_limits=()
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --driver) driver=$2; shift ;;
    --repo) repo=$2; shift ;;
    --out) out=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --peak-gflops) peak_gflops=$2; shift ;;
    --peak-gflops-f16) peak_gflops_f16=$2; shift ;;
    --peak-gbs) peak_gbs=$2; shift ;;
    --limit) user_limits+=("$2"); shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
  shift
done
# Under 9 minutes together, so a device call's 10 (timeout_s 580) returns a report
# even when every phase hangs; a full run takes about half of it on a GPU.
declare -A limit=([info]=40 [tests]=200 [ops]=80 [model]=110 [torch]=100)
[ $quick = 1 ] && limit=([info]=30 [tests]=100 [ops]=40 [model]=40 [torch]=60)
for l in "${user_limits[@]}"; do limit[${l%%=*}]=${l#*=}; done
if [ -z "$repo" ]; then
  for d in "$here/.." "$PWD"; do [ -d "$d/tests/data" ] && { repo=$(cd "$d" && pwd); break; }; done
fi
[ -n "$repo" ] && [ -d "$repo/tests/data" ] || { echo "run.sh: no repository with tests/data at $here/.. or here: give --repo DIR" >&2; exit 2; }
# the large test files travel packed (scripts/pack-test-data.sh): unpack them as CMake does
if [ -f "$repo/tests/data/packed.tar.xz" ]; then
  while read -r f; do
    [ -z "$f" ] || [ -f "$repo/tests/data/$f" ] || { tar -xJf "$repo/tests/data/packed.tar.xz" -C "$repo/tests/data" || exit 1; break; }
  done <"$repo/tests/data/packed.txt"
fi
out=${out:-$here/out}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
jobs=${jobs:-$(nproc 2>/dev/null || echo 2)}
t_start=$(date +%s)

# ---- the bundle: programs, libraries, Vulkan loader and validation layer --------------
work=$(mktemp -d "${TMPDIR:-/tmp}/vkformer-device.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xJf "$here/bundle.tar.xz" -C "$work" || { echo "run.sh: cannot unpack $here/bundle.tar.xz" >&2; exit 1; }
logs=$work/logs
mkdir -p "$logs"
export PATH="$work/bin:$PATH"
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d /usr/local/nvidia/lib64 ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/usr/local/nvidia/lib64"
export VK_ADD_LAYER_PATH="$work/share/vulkan/explicit_layer.d"
export VKF_PIPELINE_CACHE=off
export VKF_MODEL_DIR="$repo/models" # the bundled ViT-Tiny and images, for the tools' defaults
export work logs repo quick jobs
log() { echo "run.sh: $*" | tee -a "$logs/run.log" >&2; }
log "bundle in $work, repository $repo, results in $out, $jobs jobs$([ $quick = 1 ] && echo ', quick')"
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
log "host: $(uname -m), glibc ${glibc:-?} (the bundle was built against $(cat "$work/GLIBC"))"

# phase NAME FUNCTION: the function in a shell of its own under limit[NAME]; its
# status, seconds and limit go to phases.tsv
phase() {
  local name=$1 fn=$2 t0 rc status
  t0=$(date +%s)
  [ "${VKF_DEVICE_CHECK_HANG:-}" = "$name" ] && fn="sleep 100000"
  timeout -k 10 "${limit[$name]}" bash -c "$fn" >"$logs/$name.out" 2>"$logs/$name.err"
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status="failed (exit $rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(($(date +%s) - t0))" "${limit[$name]}" >>"$logs/phases.tsv"
  log "$name: $status in $(($(date +%s) - t0)) s (limit ${limit[$name]} s)"
  report # so far: a call cut short still brings a report back
}

# report: report.md and report.json from what the phases left so far, with the
# raw results: at most 8 files, what a device call brings back
report() {
  cat "$logs"/test-*.log >"$logs/tests.out" 2>/dev/null
  rm -f "$out/report.md"
  if command -v python3 >/dev/null; then
    python3 "$work/tools/device_report.py" "$logs" "$out" --peak-gflops "$peak_gflops" --peak-gflops-f16 "$peak_gflops_f16" \
      --peak-gbs "$peak_gbs" 2>>"$logs/run.log" || log "the report failed: raw results only"
  fi
  if [ ! -s "$out/report.md" ]; then
    { echo "# vkformer device check (raw results)"; echo; echo '```'; cat "$logs/phases.tsv"; echo '```'; } >"$out/report.md"
  fi
  cp "$logs/run.log" "$out/run.log"
  [ -s "$logs/info.json" ] && cp "$logs/info.json" "$out/info.json"
  if [ -s "$logs/ops.out" ]; then cp "$logs/ops.out" "$out/bench-ops.json"
  elif [ -s "$logs/ops-auto.json" ]; then cp "$logs/ops-auto.json" "$out/bench-ops.json"; fi
  tail -c 4000000 "$logs/tests.out" >"$out/tests.log" 2>/dev/null
  cat "$logs"/torch-*.json >"$out/torch.json" 2>/dev/null
  [ -s "$out/torch.json" ] || rm -f "$out/torch.json"
  return 0
}

# ---- the driver: the loader's own search, else NVIDIA's, else --driver -------------
has_gpu() { grep -Eq '"type":[[:space:]]*"(discrete|integrated|virtual)"' "$1" 2>/dev/null; }
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -n "$driver" ]; then
  export VK_DRIVER_FILES=$driver
else
  timeout 60 vkformer-info --json >"$logs/probe.json" 2>>"$logs/run.log"
  if ! has_gpu "$logs/probe.json" && [ -f "$nvidia_icd" ]; then
    log "no GPU through the loader's default search: using $nvidia_icd"
    export VK_DRIVER_FILES=$nvidia_icd
  fi
fi
log "driver: ${VK_DRIVER_FILES:-found by the default search of the loader}"

# ---- 1. info --------------------------------------------------------------------------
info() { vkformer-info && vkformer-info --json >"$logs/info.json"; }

# ---- 2. the test suites, as ctest runs them, with validation ------------------------
# One test: name, executable, environment ("k=v;k=v"); its exit status,
# seconds and validation messages to tests.tsv.
one_test() {
  local name exe env safe t0 rc msgs
  IFS=$'\t' read -r name exe env <<<"$1"
  safe=$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' _)
  t0=$(date +%s)
  (
    IFS=';'
    for kv in $env; do export "${kv?}"; done
    exec timeout -k 5 "$TEST_LIMIT" "$work/tests/$exe" --jobs 2
  ) >"$logs/test-$safe.log" 2>&1
  rc=$?
  msgs=$(grep -c 'vulkan \[' "$logs/test-$safe.log")
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" "$msgs" >>"$logs/tests.tsv"
}
run_tests() {
  local list=$work/tests.tsv
  if [ "$quick" = 1 ]; then
    grep -E '^(test_base|test_device|test_validation|test_eltwise|test_io|test_tokenizer|test_cli|test_tools)(\[|	)' "$work/tests.tsv" >"$logs/tests.list"
    list=$logs/tests.list
  fi
  [ -f "$repo/models/all-MiniLM-L6-v2/model.safetensors" ] || export VKF_TEST_NO_MINILM=1
  cd "$repo" || return 1
  : >"$logs/tests.tsv"
  xargs -d '\n' -P "$jobs" -n 1 bash -c 'one_test "$1"' _ <"$list"
  ! awk -F'\t' '$2 != 0' "$logs/tests.tsv" | grep -q .
}
export TEST_LIMIT=$((limit[tests] - 10))

# ---- 3. benchmarks -----------------------------------------------------------------------
bench_ops() { # the library's own choice first, so a cut phase still leaves figures; fractions of the peak: in the report
  if [ "$quick" = 1 ]; then vkformer-bench ops --json --auto-only --filter 50x768x3072 --repeat 2 --warmup 1
  else vkformer-bench ops --json --auto-only >"$logs/ops-auto.json" && vkformer-bench ops --json; fi
}
bench_models() {
  local rc=0 c
  if [ "$quick" = 1 ]; then
    vkformer-bench model --json --config tiny --batches 1 --precision fp32 --repeat 2 --warmup 1 >"$logs/model-tiny.json"
    return
  fi
  for c in base bert-base minilm-l6 gpt2 clip-b32; do
    vkformer-bench model --json --config "$c" >"$logs/model-$c.json" || rc=1
  done
  return $rc
}

# ---- 4. torch beside us, where there is a CUDA torch --------------------------------------
run_torch() { # cheapest first: a cut phase keeps what it finished
  local t=$work/tools only=vit-b16,bert-base,minilm-l6,clip-b32,gpt2 compiled=vit-b16,bert-base,gpt2
  [ "$quick" = 1 ] && only=vit-b16 compiled=vit-b16
  python3 "$t/bench_torch_ops.py" "$out/bench-ops.json" --device cuda >"$logs/torch-ops.json" &&
    python3 "$t/bench_hf_model.py" --device cuda --dtype fp32 --only $only --json >"$logs/torch-fp32.json" &&
    python3 "$t/bench_hf_model.py" --device cuda --dtype fp16 --only $only --json >"$logs/torch-fp16.json" &&
    python3 "$t/bench_hf_model.py" --device cuda --dtype fp16 --compile --only $compiled --json >"$logs/torch-fp16-compile.json"
}
export -f info one_test run_tests bench_ops bench_models run_torch

phase info info
phase tests run_tests
phase ops bench_ops
phase model bench_models
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || [ "${VKF_DEVICE_CHECK_HANG:-}" = torch ]; then
  phase torch run_torch
else
  printf 'torch\tskipped: no python3 torch with CUDA here\t0\t%s\n' "${limit[torch]}" >>"$logs/phases.tsv"
  log "torch: skipped (no python3 torch with CUDA here)"
fi

# ---- 5. the report ------------------------------------------------------------------------
log "all phases in $(($(date +%s) - t_start)) s"
report
echo "run.sh: report in $out/report.md" >&2
cat "$out/report.md"
