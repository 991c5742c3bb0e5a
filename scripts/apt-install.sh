#!/usr/bin/env bash
# Installs the Debian packages named that are not installed yet, quietly and
# without recommends; PKG:arm64 names add the arm64 architecture first.
# Does nothing (and needs no network) when all are present.
#   bash scripts/apt-install.sh PKG...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "apt-install.sh: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "apt-install.sh: installing ${missing[*]}" >&2
for p in "${missing[@]}"; do
  arch=${p##*:}
  if [ "$arch" != "$p" ] && [ "$arch" != "$(dpkg --print-architecture)" ] &&
     ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    $sudo dpkg --add-architecture "$arch"
  fi
done
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
