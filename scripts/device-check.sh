#!/usr/bin/env bash
# One prepared command that checks and measures everything on any machine's
# Vulkan driver (a GPU session spends its minutes on results, not on setup).
#
#   bash scripts/device-check.sh bundle DIR     (DIR: an ignored folder, e.g. .device)
#
# builds the project here for a bundle (build-device/: tests that find the
# tools on PATH and the data under the repository they run from, no OpenBLAS),
# and writes DIR/bundle.tar.xz and DIR/run.sh. The archive holds everything a
# bare x86-64 Linux with a Vulkan driver lacks: the tools, vkformer-bench, the
# test executables and the ctest list (tests.tsv: name, executable,
# environment), the shared libraries they load that are not glibc's or the
# compiler's (found with ldd: cJSON, utf8proc, PCRE2, libjpeg-turbo, libpng,
# Criterion and its own dependencies), the Vulkan loader, the Khronos
# validation layer and glvnd's libGLdispatch (NVIDIA's ICD loads it),
# from this machine's Debian packages, and the report scripts. The test data
# and models are not in it: they travel as the repository's own files, and
# run.sh runs the suites from the checkout it sits in.
#
# Then, on the target (see run.sh --help): bash DIR/run.sh [--quick]
#
#   bash scripts/device-check.sh selftest
#
# what CI runs: bundles into .device, copies the bundle to an unrelated
# directory and runs run.sh --quick there with LD_LIBRARY_PATH and every VK_*
# variable cleared (a library the bundle lacks fails here, not on the GPU),
# checks that the report has every phase with numbers in it, then makes the
# ops phase hang and checks that it is cut at its limit and the rest still run.
#
# Size: a device call carries the whole working tree, tracked files and
# carried folders together, up to 64 MiB: this prints the bundle's size and
# the total and fails when they would not fit.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && usage 0
if [ "${1:-}" = selftest ]; then
  bash "$0" bundle .device
  t=$(mktemp -d)
  trap 'rm -rf "$t"' EXIT
  cp -r .device "$t/bundle"
  mkdir "$t/empty"
  clean=(env -u LD_LIBRARY_PATH)
  for v in $(env | sed -n 's/^\(VK_[A-Za-z0-9_]*\)=.*/\1/p'); do clean+=(-u "$v"); done
  (cd "$t/empty" && "${clean[@]}" bash "$t/bundle/run.sh" --quick --repo "$OLDPWD" --out "$t/out") >"$t/run.txt" 2>&1 ||
    { cat "$t/run.txt" >&2; echo "device-check: run.sh --quick failed" >&2; exit 1; }
  (cd "$t/empty" && "${clean[@]}" VKF_DEVICE_CHECK_HANG=ops bash "$t/bundle/run.sh" --quick --limit ops=5 --repo "$OLDPWD" \
    --out "$t/hang") >"$t/hang.txt" 2>&1 || { cat "$t/hang.txt" >&2; echo "device-check: run.sh with a hanging phase failed" >&2; exit 1; }
  python3 - "$t/out/report.json" "$t/hang/report.json" <<'PY'
import json, sys
def phases(r): return {p["phase"]: p for p in r["phases"]}
r = json.load(open(sys.argv[1]))
p = phases(r)
fails = []
for name in ("info", "tests", "ops", "model"):
    if p.get(name, {}).get("status") != "ok":
        fails.append(f"phase {name}: {p.get(name)}")
if "torch" not in p:
    fails.append("no torch phase in the report")
if not r["device"].get("name"):
    fails.append("no device in the report")
t = r["tests"]
if t["suites"] == 0 or t["failed"] or t["validation_messages"]:
    fails.append(f"tests: {t['suites']} suites, failed {t['failed']}, {t['validation_messages']} validation messages")
if not r["ops"] or not any(row.get("median_us", 0) > 0 for row in r["ops"]["rows"]):
    fails.append("no ops timings")
if not any(row.get("latency_ms", 0) > 0 for row in r["models"]["rows"]):
    fails.append("no model timings")
h = phases(json.load(open(sys.argv[2])))
if h.get("ops", {}).get("status") != "timeout" or h["ops"]["seconds"] > 20:
    fails.append(f"the hanging ops phase was not cut at its 5 s limit: {h.get('ops')}")
if h.get("model", {}).get("status") != "ok" or h.get("tests", {}).get("status") != "ok":
    fails.append(f"the phases after or around the hang did not run: {h}")
if fails:
    sys.exit("device-check selftest: " + "; ".join(fails))
print(f"device-check selftest: every phase has numbers ({t['suites']} suites passed, {len(r['ops']['rows'])} op rows, "
      f"{len(r['models']['rows'])} model rows; torch: {p['torch']['status']}); a hanging phase was cut at {h['ops']['seconds']} s "
      "and the others ran")
PY
  exit
fi
[ "${1:-}" = bundle ] && [ -n "${2:-}" ] || usage 2
dir=$2
build=${VKF_DEVICE_BUILD:-build-device}
limit_mib=64

echo "device-check: building in $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DVKF_TEST_RELATIVE_PATHS=ON -DVKF_BENCH_BLAS=OFF -DVKF_INSTALL=OFF \
  -DVKF_WERROR=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,tests,tools,share/vulkan/explicit_layer.d}
for t in info classify tokenize embed fill-mask run generate zero-shot rerank transcribe bench; do cp "$build/vkformer-$t" "$stage/bin/"; done
find "$build/tests" -maxdepth 1 -type f -name 'test_*' ! -name test_triton -perm -u+x -exec cp {} "$stage/tests/" \;
strip --strip-unneeded "$stage"/bin/* "$stage"/tests/*

# The Vulkan loader, the validation layer and glvnd's libGLdispatch, from Debian's packages.
pkgfile() { # PACKAGE PATTERN: the package's installed file matching PATTERN
  local f # the native architecture's copy: the aarch64 cross-build installs arm64 ones beside it
  f=$(dpkg -L "$1:$(dpkg --print-architecture)" 2>/dev/null | grep -E "$2" | head -n1)
  [ -n "$f" ] || { echo "device-check: $1 is not installed (bash scripts/deps.sh installs it)" >&2; exit 1; }
  echo "$f"
}
bash scripts/apt-install.sh libvulkan1 vulkan-validationlayers libglvnd0 >/dev/null
cp -L "$(pkgfile libvulkan1 '/libvulkan\.so\.1$')" "$stage/lib/libvulkan.so.1"
cp -L "$(pkgfile vulkan-validationlayers '/libVkLayer_khronos_validation\.so$')" "$stage/lib/"
cp "$(pkgfile vulkan-validationlayers 'VkLayer_khronos_validation\.json$')" "$stage/share/vulkan/explicit_layer.d/"
cp -L "$(pkgfile libglvnd0 '/libGLdispatch\.so\.0$')" "$stage/lib/libGLdispatch.so.0"

# What they load that a bare machine may lack: everything but glibc, the
# compiler's runtime (the target's own is newer; ours would shadow it for the
# GPU driver too) and what the bundle has already.
skip='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libgcc_s|libstdc\+\+)\.so'
for f in "$stage"/bin/* "$stage"/tests/* "$stage"/lib/*; do
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  [ -e "$stage/lib/$name" ] || cp -L "$path" "$stage/lib/$name"
done
missing=$(for f in "$stage"/bin/* "$stage"/tests/*; do LD_LIBRARY_PATH="$stage/lib" ldd "$f" | grep 'not found' || true; done | sort -u)
[ -z "$missing" ] || { echo "device-check: unresolved libraries:" >&2; echo "$missing" >&2; exit 1; }

# The ctest list, without the install test (it builds consumers: no GPU in it) and the
# Triton test (it fetches tritonserver from PyPI).
ctest --test-dir "$build" --show-only=json-v1 | python3 -c '
import json, os, sys
for t in json.load(sys.stdin)["tests"]:
    if t["name"] in ("test_install", "test_triton"):  # they fetch from package registries: no network there
        continue
    env = next((p["value"] for p in t.get("properties", []) if p["name"] == "ENVIRONMENT"), [])
    print("\t".join([t["name"], os.path.basename(t["command"][0]), ";".join(env)]))
' >"$stage/tests.tsv"
getconf GNU_LIBC_VERSION | awk '{print $2}' >"$stage/GLIBC"
cp tools/device_report.py tools/bench_hf_model.py tools/bench_torch_ops.py "$stage/tools/"

mkdir -p "$dir"
rm -f "$dir/bundle.tar.xz"
# one solid xz stream: the executables share most of their bytes
tar -C "$stage" -cf - . | xz -9 -T1 >"$dir/bundle.tar.xz"
cp scripts/device-run.sh "$dir/run.sh"
chmod +x "$dir/run.sh"

mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
bundle=$(cat "$dir"/* | wc -c)
tree=$(git ls-files -z | xargs -0 stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
echo "device-check: $dir: $(mib "$bundle") MiB ($(ls "$stage/tests" | wc -l) test executables, $(wc -l <"$stage/tests.tsv") suites," \
  "$(ls "$stage/lib" | wc -l) libraries); with the tracked tree ($(mib "$tree") MiB) a device call carries $(mib $((bundle + tree))) MiB" \
  "of its $limit_mib MiB" >&2
if [ $((bundle + tree)) -gt $((limit_mib * 1048576 - 262144)) ]; then
  echo "device-check: over the limit (a quarter MiB is left for what else travels)" >&2
  exit 1
fi
