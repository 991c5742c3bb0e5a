#!/usr/bin/env bash
# Cross-builds vkformer for aarch64 Linux with Debian 12's cross toolchain,
# then runs it under qemu-aarch64 (user mode, called directly: no binfmt
# registration, the host is left as it was) on the arm64 lavapipe:
# vkformer-info, and vkformer-classify on the cats photo, which must say tabby
# (one inference takes about a minute under emulation). The test suites are
# compiled for aarch64 too (not linked: Debian's Criterion cannot be
# installed for two architectures at once, arm64's would remove the host's).
# usage: scripts/cross-arm64.sh [BUILD_DIR]   (default build-arm64)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-arm64}

arm64=(libcjson-dev libstb-dev libutf8proc-dev libpcre2-dev libjpeg62-turbo-dev libpng-dev libsndfile1-dev libsoxr-dev
       libvulkan-dev mesa-vulkan-drivers)
packages=(crossbuild-essential-arm64 qemu-user)
for p in "${arm64[@]}"; do packages+=("$p:arm64"); done
bash scripts/apt-install.sh "${packages[@]}"

cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
      -DVKF_BUILD_TESTS=OFF -DVKF_BUILD_BENCH=OFF -DVKF_BUILD_TOOLS=ON -DVKF_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
# GCC 12 for aarch64 has crashed on test code the host compiler takes: compile
# every suite at -O2 and -O3 (Criterion's headers are architecture-independent).
defs=(-D_POSIX_C_SOURCE=200809L -DVKF_TEST_DATA='"tests/data"' -DVKF_REPO_DIR='"."' -DVKF_TRITON_SERVE='"scripts/triton-serve.sh"')
# every tool path the suites name (CMake defines them per tool)
for m in $(grep -ho 'VKF_[A-Z_]*_BIN' tests/*.c tests/*.h | sort -u); do defs+=("-D$m=\"vkformer\""); done
for t in tests/*.c; do
  for o in -O2 -O3; do
    aarch64-linux-gnu-gcc -std=c11 $o -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-format-truncation -Werror "${defs[@]}" \
      -Iinclude -Isrc -Itests -Itriton -c "$t" -o /dev/null
  done
done
echo "cross-arm64: $(ls tests/*.c | wc -l) test sources compile for aarch64 at -O2 and -O3"
file "$build/vkformer-classify" | grep -q 'ARM aarch64' || { echo "cross-arm64: not an aarch64 executable" >&2; exit 1; }

# Only the arm64 lavapipe: the x86-64 driver's manifest would be skipped with a warning.
export VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.aarch64.json VKF_PIPELINE_CACHE=off
qemu-aarch64 "$build/vkformer-info"
t0=$(date +%s)
out=$(qemu-aarch64 "$build/vkformer-classify" --top=3)
echo "$out"
grep -q '281  tabby, tabby cat' <<<"$out" || { echo "cross-arm64: the cats photo is not tabby under qemu-aarch64" >&2; exit 1; }
echo "cross-arm64: aarch64 build classified the cats photo under qemu-aarch64 in $(( $(date +%s) - t0 )) s"
