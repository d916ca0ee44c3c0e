#!/usr/bin/env bash
# Measures how well the simulator's synthetic page contents compress, and writes the
# compression profile profiles/compression/synthetic.json (format in
# profiles/compression/README.md).
#
# A synthetic page of content class k is what host/content.hpp's generate_page_bytes makes of a
# fingerprint of that class: in every group of eight 8-byte words the first k + 1 are random
# (a splitmix64 stream seeded by the fingerprint), the others one repeated word. The lab's
# memhog writes exactly these bytes when a scenario names its `content:` class, so a scenario
# that runs memhog with `content:` on both backends gives the simulator's zswap (or tmem) the
# sizes the real kernel's compressors produce on the guest's pages. The pages come from
# `memvirt-guest pages` (the guest program's own generator, run on the host); `memvirt bench
# tmem --profile-out` compresses each with LZO1X-1, LZ4 and zstd.
#
# Settings (environment):
#   PAGES=20000                 pages per class
#   WORK=/tmp/synthetic-compression  scratch folder (PAGES x 4 KiB per class)
#   MEMVIRT=build/release/memvirt  (memvirt-guest beside it)
#   OUT=profiles/compression/synthetic.json
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAGES=${PAGES:-20000}
WORK=${WORK:-/tmp/synthetic-compression}
MEMVIRT=${MEMVIRT:-$repo/build/release/memvirt}
OUT=${OUT:-$repo/profiles/compression/synthetic.json}
guest=$(dirname "$MEMVIRT")/memvirt-guest
[[ -x $MEMVIRT && -x $guest ]] || { echo "no memvirt and memvirt-guest at $MEMVIRT (build first)" >&2; exit 1; }
case $WORK in /tmp/*|/var/tmp/*|/work/*) ;; *) echo "WORK must be under /tmp, /var/tmp or /work" >&2; exit 1;; esac

rm -rf "$WORK"
mkdir -p "$WORK"
classes=()
k=0
for c in source header object binary compiler_heap text; do
  # Any base gives pages of the same structure; one per class keeps the classes' pages apart.
  "$guest" pages "$c" class=$k count="$PAGES" base=$((k * 1000003 + 1)) >"$WORK/$c.pages"
  echo "$WORK/$c.pages" >"$WORK/$c.list"
  classes+=(--class "$c=$WORK/$c.list")
  k=$((k + 1))
done
python3 - "$WORK/provenance.json" "$repo" "$PAGES" <<'PY'
import json, subprocess, sys, datetime
out, repo, pages = sys.argv[1], sys.argv[2], int(sys.argv[3])
def run(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, cwd=repo).stdout.strip()
    except OSError:
        return ""
pkg = lambda p: run("dpkg-query", "-W", "-f=${Version}", p)
json.dump({
    "sources": "synthetic pages: host/content.hpp generate_page_bytes, class k = k + 1 random "
               "words in every 8 (memvirt-guest pages class=k, %d pages per class)" % pages,
    "date": datetime.date.today().isoformat(),
    "machine": run("uname", "-srm"),
    "tools": {"liblzo2": pkg("liblzo2-2"), "liblz4": pkg("liblz4-1"), "libzstd": pkg("libzstd1")},
    "script": "scripts/measure-synthetic-compression.sh",
    "script_commit": run("git", "rev-parse", "--short", "HEAD"),
}, open(out, "w"), indent=1)
PY
"$MEMVIRT" bench tmem --profile-out "$OUT" --provenance "$WORK/provenance.json" \
  --class-pages "$PAGES" --class-file-pages 0 "${classes[@]}"
rm -rf "$WORK"
