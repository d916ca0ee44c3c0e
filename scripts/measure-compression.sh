#!/usr/bin/env bash
# Measures how well real pages of each content class compress with memvirt's compressors
# (LZO1X-1, LZ4, zstd level 3) and writes the compression profile
# (profiles/compression/kernel-build.json; format in profiles/compression/README.md, method
# and results in docs/content-classes.md).
#
# The pages come from a real kernel build, as scripts/measure-kernel-build.sh makes one:
# Debian 12's linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz) unpacked into a scratch
# folder, configured (ARCH=x86_64 defconfig), `make prepare`, then a subset of directories
# built with `nice -n 19 make -j2`. While it builds, scripts/compression-pages.py dump-cc1
# dumps the resident anonymous memory of running cc1 processes (compiler_heap). Then
# compression-pages.py lists picks files per class (source: the files the build compiled;
# header: the headers it read, its Kconfig files and linker scripts; object and text: its .o,
# .a and .cmd files; binary from /usr/bin and /usr/lib/x86_64-linux-gnu) and `memvirt bench tmem
# --profile-out` compresses every 4 KiB page of them with each compressor.
#
# Run as root (it installs packages and reads other processes' memory). Settings (environment):
#   JOBS=2                      make -j
#   TARGETS="init/ kernel/ mm/ lib/"   the directories built
#   PAGES=40000                 pages per class (files in a seeded random order, at most
#                               PAGES/64 from one file)
#   CC1_EVERY=3 CC1_AGE_MS=250  dump every 3rd cc1, once it has run 250 ms
#   WORK=/tmp/compression-measure  scratch folder (about 1.5 GB)
#   MEMVIRT=build/release/memvirt
#   OUT=profiles/compression/kernel-build.json
#   KEEP_WORK=1                 keep the scratch folder
#   REUSE_WORK=1                reuse the build and dump an earlier KEEP_WORK=1 run left in WORK
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/scripts/apt-install.sh"
JOBS=${JOBS:-2}
TARGETS=${TARGETS:-"init/ kernel/ mm/ lib/"}
PAGES=${PAGES:-40000}
CC1_EVERY=${CC1_EVERY:-3}
CC1_AGE_MS=${CC1_AGE_MS:-250}
WORK=${WORK:-/tmp/compression-measure}
MEMVIRT=${MEMVIRT:-$repo/build/release/memvirt}
OUT=${OUT:-$repo/profiles/compression/kernel-build.json}
KEEP_WORK=${KEEP_WORK:-0}
REUSE_WORK=${REUSE_WORK:-0}
PKG=linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz
helper=$repo/scripts/compression-pages.py

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

[[ -x $MEMVIRT ]] || { echo "no memvirt at $MEMVIRT (build it first, or set MEMVIRT)" >&2; exit 1; }
case $WORK in /tmp/*|/var/tmp/*|/work/*) ;; *) echo "WORK must be under /tmp, /var/tmp or /work" >&2; exit 1;; esac

# -- packages (the build's, as scripts/measure-kernel-build.sh installs them)
packages=($PKG build-essential bc flex bison libelf-dev libssl-dev xz-utils python3 cpio kmod)
apt_install_missing measure-compression "${packages[@]}"
[[ -f $TARBALL ]] || { echo "missing $TARBALL (package $PKG)" >&2; exit 1; }

tree=$WORK/linux-source-6.1
heap=$WORK/cc1-anon
if [[ $REUSE_WORK == 1 && -f $WORK/built ]]; then
  log "reusing the build in $WORK"
else
  rm -rf "$WORK"
  mkdir -p "$WORK"
  log "unpacking $TARBALL"
  tar -C "$WORK" -xf "$TARBALL"
  # ARCH=x86_64 on every make, as scripts/measure-kernel-build.sh does
  mk=(nice -n 19 make ARCH=x86_64)
  (cd "$tree" && "${mk[@]}" -s defconfig && "${mk[@]}" -s -j"$JOBS" prepare) >"$WORK/prepare.out" 2>&1 || {
    tail -30 "$WORK/prepare.out" >&2; exit 1; }
  python3 "$helper" dump-cc1 "$heap" --every "$CC1_EVERY" --age-ms "$CC1_AGE_MS" \
    --stop "$WORK/build-finished" &
  dumper=$!
  log "build: make -j$JOBS $TARGETS (output in $WORK/build.out), dumping one cc1 in ${CC1_EVERY}"
  # shellcheck disable=SC2086
  if ! (cd "$tree" && "${mk[@]}" -j"$JOBS" $TARGETS) >"$WORK/build.out" 2>&1; then
    touch "$WORK/build-finished"; wait "$dumper" || true
    tail -30 "$WORK/build.out" >&2; exit 1
  fi
  touch "$WORK/build-finished"
  wait "$dumper"
  touch "$WORK/built"
fi

log "listing pages per class"
python3 "$helper" lists --tree "$tree" --out "$WORK/lists" --pages "$PAGES" --heap "$heap" >&2

# -- provenance: what files, which machine, which tools
python3 - "$WORK/provenance.json" "$repo" "$TARBALL" "$PKG" "$TARGETS" "$JOBS" \
  "$WORK/lists/lists.json" "$heap/dumps.json" "$PAGES" <<'PY'
import json, os, subprocess, sys, time
out_file, repo, tarball, pkg, targets, jobs, lists, heap, pages = sys.argv[1:]
def out(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
def pkgver(p):
    return out("dpkg-query", "-W", "-f=${Version}", p)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
heap_info = json.load(open(heap))
dirty = out("git", "-C", repo, "status", "--porcelain", "--", "scripts/measure-compression.sh",
            "scripts/compression-pages.py", "src/host/compressors.cpp", "src/bench_tmem")
json.dump({
    "sources": {
        "source, header, object, text": f"{pkg} {pkgver(pkg)} ({tarball}), ARCH=x86_64 defconfig, "
                                        f"built: nice -n 19 make -j{jobs} {targets}",
        "binary": "ELF files under /usr/bin and /usr/lib/x86_64-linux-gnu, and gcc's cc1",
        "compiler_heap": f"resident private writable anonymous pages of {heap_info['processes_dumped']} "
                         f"of the build's {heap_info['processes_seen']} cc1 processes (one in "
                         f"{heap_info['every']}, each dumped once after {heap_info['age_ms']} ms "
                         f"of its life, until {heap_info.get('max_mib', 512)} MiB were dumped)",
        "pages_per_class_listed": json.load(open(lists)),
        "page_budget_per_class": int(pages),
    },
    "machine": {"cpu_model": cpu, "cores": os.cpu_count(), "mem_kib": mem, "kernel": out("uname", "-r")},
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "tools": {
        "gcc": out("gcc", "--version").splitlines()[0],
        "liblzo2": pkgver("liblzo2-2"), "liblz4": pkgver("liblz4-1"), "libzstd": pkgver("libzstd1"),
    },
    "script": "scripts/measure-compression.sh",
    "script_commit": out("git", "-C", repo, "rev-parse", "HEAD") + ("+local-changes" if dirty else ""),
}, open(out_file, "w"), indent=1)
PY

classes=()
for c in source header object binary compiler_heap text; do
  [[ -s $WORK/lists/$c.list ]] && classes+=(--class "$c=$WORK/lists/$c.list")
done
mkdir -p "$(dirname "$OUT")"
log "compressing: $MEMVIRT bench tmem --profile-out $OUT"
"$MEMVIRT" bench tmem --profile-out "$OUT" --provenance "$WORK/provenance.json" \
  --class-pages "$PAGES" --class-file-pages $((PAGES / 64 > 0 ? PAGES / 64 : 1)) "${classes[@]}"

if [[ $KEEP_WORK != 1 ]]; then
  log "removing $WORK"
  rm -rf "$WORK"
fi
log "done: $OUT"
