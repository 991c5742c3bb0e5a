#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (clang, AddressSanitizer and
# UndefinedBehaviorSanitizer) and runs each for SECONDS (default 60) from a
# seed corpus of the test data. Any crash, leak, sanitizer report or timeout
# fails the script; the input is kept under build-fuzz/findings/.
#   bash scripts/fuzz.sh [SECONDS] [HARNESS...]    (long runs: bash scripts/fuzz.sh 3600)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(image audio safetensors torchbin config npy tokenizer spm triton)

command -v clang >/dev/null || bash scripts/apt-install.sh clang
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVKF_FUZZ=ON \
  -DVKF_BUILD_TESTS=OFF -DVKF_BUILD_BENCH=OFF -DVKF_WERROR=OFF >/dev/null
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}" >/dev/null

# seed corpora from the test data (small files only)
seed() {
  local dir=build-fuzz/corpus/$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 2000000 ] && cp "$f" "$dir/$(echo "$f" | tr / _)"; done
  true
}
seed image tests/data/images/decode/* tests/data/preprocess/*.png tests/data/preprocess/*.jpg tests/data/images/imagenet_samples/n03240683_10240.JPEG
seed audio tests/data/audio/*.wav tests/data/audio/*.flac tests/data/audio/*.ogg
seed safetensors tests/data/golden/*/model.safetensors tests/data/clip/{legacy,text,vision}/model.safetensors tests/data/gpt2/{batch,original}/model.safetensors
printf '{"metadata": {"total_size": 16}, "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}' >build-fuzz/corpus/safetensors/index.json
# torchbin: a role byte (0: a whole .bin file, 1: a data.pkl that fuzz_torchbin.c zips)
mkdir -p build-fuzz/corpus/torchbin && rm -f build-fuzz/corpus/torchbin/*
for f in tests/data/torchbin/*.bin tests/data/torchbin/hostile/*.bin tests/data/torchbin/bert_sharded/*.bin; do
  name=$(echo "$f" | tr / _)
  { printf '\000'; cat "$f"; } >build-fuzz/corpus/torchbin/$name
  { printf '\001'; python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
sys.stdout.buffer.write(z.read(next(n for n in z.namelist() if n.endswith("/data.pkl"))))' "$f" 2>/dev/null || true; } \
    >build-fuzz/corpus/torchbin/pkl_$name
done
seed config tests/data/golden/*/config.json tests/data/clip/*/config.json tests/data/gpt2/*/config.json tests/data/text/*/config.json \
  tests/data/clip/zero_shot/preprocessor_config.json tests/data/encdec/*/config.json tests/data/encdec/bart/generation_config.json
seed npy tests/data/npy/*.npy
seed tokenizer tests/data/tokenizers/bert-base-uncased/tokenizer.json tests/data/tokenizers/bert-added/tokenizer.json \
  tests/data/tokenizers/roberta/tokenizer.json tests/data/tokenizers/gpt2-ignore-merges/tokenizer.json \
  tests/data/tokenizers/spm/{t5,bpe,llama,deberta}-json/tokenizer.json
# spm: a class byte (0 T5, 1 ALBERT, 2 Llama, 3 XLM-R, 4 DeBERTa, 5 none) before each .model
mkdir -p build-fuzz/corpus/spm && rm -f build-fuzz/corpus/spm/*
k=0
for f in tests/data/tokenizers/spm/{t5/spiece,albert/spiece,llama/tokenizer,xlmr/sentencepiece.bpe,deberta/spm,bpe/tokenizer}.model; do
  { printf "\\$(printf %03o $k)"; cat "$f"; } >build-fuzz/corpus/spm/$k.model
  k=$((k + 1))
done
# triton: a role byte (0: a BYTES tensor after a 2-byte element count, 1: a model config as JSON)
mkdir -p build-fuzz/corpus/triton && rm -f build-fuzz/corpus/triton/*
printf '\000\002\000\005\000\000\000hello\000\000\000\000' >build-fuzz/corpus/triton/bytes
printf '\001{"max_batch_size": 8, "parameters": {"task": {"string_value": "zero-shot-classification"}, "top_k": {"string_value": "3"}, '\
'"template": {"string_value": "about {}."}, "device": {"string_value": "0"}, "multi_label": {"string_value": "true"}}}' \
  >build-fuzz/corpus/triton/config

mkdir -p build-fuzz/findings
failed=0
for h in "${harnesses[@]}"; do
  log=build-fuzz/fuzz_$h.log
  max_len=1048576
  case $h in tokenizer | spm) max_len=4194304 ;; esac
  set +e
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=fuzz/lsan.supp:print_suppressions=0 build-fuzz/fuzz_$h build-fuzz/corpus/$h -max_total_time="$secs" -timeout=20 \
    -rss_limit_mb=3072 -max_len=$max_len -print_final_stats=1 -artifact_prefix=build-fuzz/findings/$h- >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  if [ $rc -ne 0 ]; then
    failed=1
    echo "fuzz.sh: $h FOUND A PROBLEM (exit $rc); input under build-fuzz/findings/, log $log" >&2
    grep -m5 -E 'ERROR|SUMMARY|runtime error' "$log" >&2 || true
  else
    echo "fuzz.sh: $h: ${runs:-?} executions in ${secs} s, ${cov:-?} coverage points (${ft:-?} features), no findings"
  fi
done
exit $failed
