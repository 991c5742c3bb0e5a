#!/usr/bin/env bash
# A newer lavapipe (Mesa's CPU Vulkan driver) beside Debian 12's, never in
# place of it: Mesa 25.0.7 from bookworm-backports (its matmul runs about 2x
# faster than Mesa 22.3's on this project's kernels; figures in the README),
# fetched by package name and version with apt (a private package list, no
# change to the system's sources), each .deb's sha256 checked, and unpacked
# into a private prefix. Only lavapipe is replaced: the other drivers the
# system has (GPUs) stay in the list the Vulkan loader reads.
#   bash scripts/lavapipe.sh fetch          fetch and unpack (once; needs the network)
#   bash scripts/lavapipe.sh run CMD...     run CMD with the newer lavapipe (fetches first)
#   eval "$(bash scripts/lavapipe.sh env)"  the same for this shell
# Environment: VKF_MESA_HOME (default ~/.cache/vkformer/mesa) holds the prefix.
set -euo pipefail

mesa=25.0.7-2~bpo12+1
drm=2.4.123-1~bpo12+1
arch=$(dpkg --print-architecture)
# name version sha256, per architecture
case $arch in
  amd64)
    debs=("mesa-vulkan-drivers $mesa 3899f1800424c60a05df5d6913076a526ca8fdbabec43672cd397563d1ca3263"
          "libdrm2 $drm 9cc2f341964286295124a32d3625edb76730500625e54a1e682761f883064d7b"
          "libdrm-amdgpu1 $drm 334e2ae389af0e9cb607c2ccfbbf7ae9feb34131ff998550baeffeeae6cda296") ;;
  *) echo "lavapipe.sh: the pinned packages are for amd64; this machine is $arch" >&2; exit 1 ;;
esac
home=${VKF_MESA_HOME:-$HOME/.cache/vkformer/mesa}/$mesa
triplet=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
lib=$home/usr/lib/$triplet
icd=$home/lvp_icd.json

fetch() {
  [ -f "$icd" ] && return 0
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo "deb http://deb.debian.org/debian bookworm-backports main" >"$work/sources.list"
  local apt=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::lists=$work/lists"
             -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root -o Debug::NoLocking=1)
  echo "lavapipe.sh: fetching Mesa $mesa's lavapipe from bookworm-backports" >&2
  apt-get "${apt[@]}" update -qq >&2
  (cd "$work" && for d in "${debs[@]}"; do
    read -r name version _ <<<"$d"
    apt-get "${apt[@]}" download -qq "$name=$version" >&2 ||
      { echo "lavapipe.sh: $name $version is no longer in bookworm-backports: update the pins in $0" >&2; exit 1; }
  done)
  rm -rf "$home.tmp" && mkdir -p "$home.tmp"
  for d in "${debs[@]}"; do
    read -r name version sum <<<"$d"
    local f=$work/${name}_${version/:/%3a}_$arch.deb
    [ -f "$f" ] || { echo "lavapipe.sh: $name was not downloaded" >&2; exit 1; }
    echo "$sum  $f" | sha256sum -c --quiet - >&2 || { echo "lavapipe.sh: $f: sha256 mismatch" >&2; exit 1; }
    dpkg-deb -x "$f" "$home.tmp"
  done
  local so=$home/usr/lib/$triplet/libvulkan_lvp.so
  [ -f "$home.tmp/usr/lib/$triplet/libvulkan_lvp.so" ] || { echo "lavapipe.sh: no libvulkan_lvp.so in the package" >&2; exit 1; }
  # only what lavapipe needs: the driver and libdrm (the packages' other drivers are left out)
  find "$home.tmp/usr/lib/$triplet" -maxdepth 1 \( -name 'libvulkan_*.so' ! -name libvulkan_lvp.so -o -name 'libVkLayer_*' \) -delete
  rm -rf "$home.tmp/usr/share/vulkan" "$home.tmp/usr/share/doc"
  printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.4.305"}}\n' "$so" >"$home.tmp/lvp_icd.json"
  rm -rf "$home" && mv "$home.tmp" "$home"
  echo "lavapipe.sh: Mesa $mesa's lavapipe in $home" >&2
}

# The loader's driver list: the system's manifests but its lavapipe, then ours.
driver_files() {
  local files=() f
  for f in /etc/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json; do
    [ -f "$f" ] || continue
    case $(basename "$f") in lvp_icd*) continue ;; esac
    # another architecture's manifest (cross-building installs them): the loader would warn
    case $(basename "$f") in *.x86_64.json | *.aarch64.json | *.i686.json | *.armv7l.json) [[ $f == *".$(uname -m).json" ]] || continue ;; esac
    files+=("$f")
  done
  files+=("$icd")
  (IFS=:; echo "${files[*]}")
}

case ${1:-} in
  fetch) fetch ;;
  env)
    fetch
    echo "export VK_DRIVER_FILES='$(driver_files)'"
    echo "export LD_LIBRARY_PATH='$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}'" ;;
  run)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 run CMD..." >&2; exit 2; }
    fetch
    VK_DRIVER_FILES=$(driver_files) LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec "$@" ;;
  -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
