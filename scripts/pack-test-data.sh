#!/usr/bin/env bash
# Packs the compressible test files listed in tests/data/packed.txt
# (tokenizer vocabularies, HF's references, every case's JSON, text and raw
# .bin / .npy tensors: 21 MB) into tests/data/packed.tar.xz (5.5 MB), the
# form the repository keeps them in:
# a clone stays small, and a device call (which carries the whole tracked
# tree, 64 MiB at most) has room for its bundle. CMake unpacks the archive
# into tests/data at configure time (the unpacked files are ignored by git);
# scripts/device-run.sh does the same on a device.
#
# Run it after a tools/make_*_refs.py script rewrote one of the listed files,
# and commit the archive. The archive is reproducible: sorted names, no times
# or owners, one xz stream.
set -euo pipefail
cd "$(dirname "$0")/../tests/data"
while read -r f; do
  [ -z "$f" ] || [ -f "$f" ] || { echo "pack-test-data: $f is missing" >&2; exit 1; }
done <packed.txt
grep -v '^$' packed.txt | LC_ALL=C sort | tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
  -cf - -T - | xz -9 -T1 >packed.tar.xz.tmp
mv packed.tar.xz.tmp packed.tar.xz
{
  echo "# unpacked from packed.tar.xz at configure time (scripts/pack-test-data.sh)"
  echo "/.packed.stamp"
  grep -v '^$' packed.txt | LC_ALL=C sort | sed 's|^|/|'
} >.gitignore
echo "pack-test-data: tests/data/packed.tar.xz: $(wc -l <packed.txt) files, $(stat -c %s packed.tar.xz) bytes" >&2
