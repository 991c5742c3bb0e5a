#!/usr/bin/env bash
# Prints a 4.4 MB English text for `vkformer-bench tokenize`: the King James
# Bible (public domain) from Debian's bible-kjv package, one verse per line.
#   bash tools/bench_text.sh > kjv.txt
set -euo pipefail
if ! command -v bible >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq bible-kjv >/dev/null
fi
bible -f 'Gen1:1-Rev22:21'
