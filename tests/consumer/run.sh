#!/usr/bin/env bash
# Installs a built vkformer into a temporary prefix, moves the prefix (the
# install must be relocatable), and checks it as an integrating user would:
#   - the shared library exports exactly the vkf_* functions vkformer.h
#     declares, with SONAME libvkformer.so.0.<minor>; the static library has
#     no global symbol but those;
#   - no installed program has a path into the source or build tree in it,
#     and the installed vkformer-classify finds the installed model;
#   - out-of-tree consumers built with find_package(vkformer) and with
#     pkg-config, shared and static, classify the cats photo, including apps
#     that call Vulkan themselves, use volk themselves, or define base_getenv;
#   - an app with vkformer as a subproject (add_subdirectory) builds and runs.
# usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/vkf-consumer-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export VKF_PIPELINE_CACHE=off

cmake --install "$build" --prefix "$work/staged" >/dev/null
mv "$work/staged" "$work/prefix" # relocated: nothing may remember the first prefix
prefix=$work/prefix
pc=$(find "$prefix" -name vkformer.pc)
[ -n "$pc" ] || fail "no vkformer.pc installed"
libdir=$(cd "$(dirname "$pc")/.." && pwd)
share=$prefix/share/vkformer
for f in "$prefix/include/vkformer.h" "$libdir/libvkformer.a" "$libdir/cmake/vkformer/vkformerConfig.cmake" \
         "$libdir/cmake/vkformer/vkformerConfigVersion.cmake" "$share/models/vit-tiny-patch16-224/model.safetensors" \
         "$share/models/images/000000039769.png" "$prefix/bin/vkformer-classify"; do
  [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
if [ -e "$build/vkformer-bench" ]; then
  "$prefix/bin/vkformer-bench" --version >/dev/null || fail "vkformer-bench is not installed with the tools"
fi
echo "installed and relocated: $(cd "$prefix" && find . -type f | wc -l) files"

# ---- exported symbols -----------------------------------------------------------
so=$(readlink -f "$libdir/libvkformer.so")
minor=$(sed -n 's/^#define VKF_VERSION_MINOR \([0-9]*\)/\1/p' "$prefix/include/vkformer.h")
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libvkformer.so.0.$minor" ] || fail "SONAME is '$soname', want libvkformer.so.0.$minor"
sed -n 's/^VKF_API [^(]*[ *]\(vkf_[a-z0-9_]*\)(.*/\1/p' "$prefix/include/vkformer.h" | sort >"$work/api.txt"
nm -D --defined-only "$so" | awk '{print $3}' | sort >"$work/exported.txt"
if ! diff -u "$work/api.txt" "$work/exported.txt"; then fail "libvkformer.so exports other symbols than the API (diff above: - declared, + exported)"; fi
nm -g --defined-only "$libdir/libvkformer.a" | awk 'NF == 3 {print $3}' | sort >"$work/static.txt"
if grep -v '^vkf_' "$work/static.txt"; then fail "libvkformer.a has global symbols outside the API (above)"; fi
diff -q "$work/api.txt" "$work/static.txt" >/dev/null || fail "libvkformer.a does not define exactly the API"
echo "libvkformer.so ($soname) and libvkformer.a: exactly the $(wc -l <"$work/api.txt") API functions"

# ---- installed tools ---------------------------------------------------------------
for exe in "$prefix"/bin/*; do
  objcopy --strip-debug "$exe" "$work/stripped"
  if grep -q -a -F -e "$src" -e "$build" "$work/stripped"; then fail "$(basename "$exe") has a build-machine path compiled in"; fi
done
out=$(cd / && "$prefix/bin/vkformer-classify" --top=1 -q)
grep -q "281  tabby, tabby cat" <<<"$out" || fail "installed vkformer-classify: $out"
mkdir "$work/elsewhere" && cp -r "$share/models" "$work/elsewhere/"
out=$(cd / && VKF_MODEL_DIR=$work/elsewhere/models "$prefix/bin/vkformer-classify" --top=1 -q)
grep -q "^$work/elsewhere/models/images" <<<"$out" || fail "VKF_MODEL_DIR not used: $out"
echo "installed vkformer-classify finds the installed model (and VKF_MODEL_DIR)"

run_apps() { # label, then the apps
  local label=$1 app
  shift
  for app in "$@"; do
    "$app" "$share" >"$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; fail "$label: $(basename "$app") failed"; }
    if [[ $label == *static* ]] && readelf -d "$app" | grep -q 'libvkformer\.so'; then fail "$label: $(basename "$app") links libvkformer.so"; fi
    if [[ $label == *shared* ]] && ! readelf -d "$app" | grep -q "\[$soname\]"; then fail "$label: $(basename "$app") does not need $soname"; fi
  done
  echo "$label: $# app(s) classified the cats photo"
}

# ---- find_package ------------------------------------------------------------------------
for kind in shared static; do
  static=OFF
  [ $kind = static ] && static=ON
  cmake -S "$src/tests/consumer" -B "$work/cmake-$kind" -DCMAKE_PREFIX_PATH="$prefix" -DVKF_STATIC_CONSUMER=$static -DVKF_VERSION_WANTED=0.$minor \
        -DCMAKE_BUILD_TYPE=Release >"$work/log.txt" 2>&1 || { cat "$work/log.txt" >&2; fail "find_package ($kind): configure failed"; }
  cmake --build "$work/cmake-$kind" -j2 >"$work/log.txt" 2>&1 || { cat "$work/log.txt" >&2; fail "find_package ($kind): build failed"; }
  b=$work/cmake-$kind
  run_apps "find_package, $kind" "$b/app" "$b/app_vulkan" "$b/app_volk" "$b/app_getenv"
done

# ---- pkg-config ----------------------------------------------------------------------------
# Only vkformer's own .pc in sight (PKG_CONFIG_LIBDIR): the shared library's
# flags must need no other module, and be just the prefix's -I, -L and -l.
pc_own() { PKG_CONFIG_LIBDIR=$libdir/pkgconfig PKG_CONFIG_PATH= pkg-config "$@"; }
cc=${CC:-cc}
[ "$(pc_own --modversion vkformer)" = "$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")/\1/p' "$libdir/cmake/vkformer/vkformerConfigVersion.cmake")" ] ||
  fail "pkg-config --modversion disagrees with the CMake package"
flags=$(pc_own --cflags --libs vkformer) || fail "pkg-config --cflags --libs vkformer needs more than vkformer.pc"
read -r -a words <<<"$flags"
[ ${#words[@]} = 3 ] && [ "${words[2]}" = -lvkformer ] &&
  [ "$(cd "${words[0]#-I}" && pwd)" = "$prefix/include" ] && [ "$(cd "${words[1]#-L}" && pwd)" = "$libdir" ] ||
  fail "pkg-config --cflags --libs vkformer gives more than the prefix's -I, -L and -lvkformer: '$flags'"
app=$src/tests/consumer/app.c
$cc -std=c11 -O2 -o "$work/pc_shared" "$app" $flags -Wl,-rpath,"$libdir"
$cc -std=c11 -O2 -DAPP_VULKAN -o "$work/pc_shared_vulkan" "$app" $flags $(pkg-config --cflags --libs vulkan) -Wl,-rpath,"$libdir"
run_apps "pkg-config, shared" "$work/pc_shared" "$work/pc_shared_vulkan"
# Static: the archive by name, then what --static adds (Libs.private), still from vkformer.pc alone.
static_libs=$(pc_own --static --libs vkformer | sed 's/ -lvkformer / /; s/ -lvkformer$//')
$cc -std=c11 -O2 -o "$work/pc_static" "$app" $(pc_own --cflags vkformer) "$libdir/libvkformer.a" $static_libs
$cc -std=c11 -O2 -DAPP_GETENV -o "$work/pc_static_getenv" "$app" $(pc_own --cflags vkformer) "$libdir/libvkformer.a" $static_libs
run_apps "pkg-config, static" "$work/pc_static" "$work/pc_static_getenv"
# ---- as a subproject (add_subdirectory) --------------------------------------------------
cmake -S "$src/tests/consumer/subproject" -B "$work/sub" -DVKF_SOURCE_DIR="$src" -DCMAKE_BUILD_TYPE=Release \
      >"$work/log.txt" 2>&1 || { cat "$work/log.txt" >&2; fail "add_subdirectory: configure failed"; }
cmake --build "$work/sub" -j2 --target app >"$work/log.txt" 2>&1 || { cat "$work/log.txt" >&2; fail "add_subdirectory: build failed"; }
run_apps "add_subdirectory, static" "$work/sub/app"
echo "consumers: all passed"
