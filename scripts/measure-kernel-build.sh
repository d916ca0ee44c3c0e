#!/usr/bin/env bash
# Measures a real Linux kernel build and writes the kernel-build workload profile
# (profiles/kernel-build/, format in profiles/kernel-build/README.md, method in
# docs/kernel-build-profile.md).
#
# The source is Debian 12's linux-source-6.1 package (/usr/src/linux-source-6.1.tar.xz). The
# script unpacks it into a scratch folder, configures it (x86_64 defconfig), runs `make
# prepare`, counts every object a full build would compile (a dry run), then builds a subset
# of directories (or everything) with gcc, ld and ar replaced on PATH by scripts/kbuild-wrap.py, which records
# each compile unit's CPU, maximum RSS, dependency list and output, and each link or archive
# step. Then `make clean`, whose effect is recorded, and one more `make prepare` (what a
# rebuild after a clean redoes before its first compile). Finally scripts/kbuild-profile.py
# assembles the profile and the scratch folder is removed.
#
# Run as root (it installs packages). Every make runs under `nice -n 19`. Rerunnable: each run
# starts from a fresh unpack. Settings (environment):
#   JOBS=2                      make -j
#   CONFIG=defconfig            the configuration target (tinyconfig, ...)
#   TARGETS="init/ kernel/ ..." the directories built (default below); set but empty: `make all`
#   WORK=/tmp/kbuild-measure    scratch folder (about 1.6 GB while it runs)
#   OUT=profiles/kernel-build/linux-6.1-x86_64-CONFIG[-subset].json
#   KEEP_WORK=1                 keep the scratch folder (the built tree and the raw records)
#   KEEP_RECORDS=1              remove the tree but keep the raw records (logs/, runs/,
#                               snapshots/: kbuild-profile.py assemble can run on them again)
#
# Dry-run mode, for a tree this machine cannot build (an old kernel), to count what its full
# build compiles: DRYRUN_TREE=/path/to/unpacked/tree SOURCE="where the tree came from"
# OUT=file.json configures that tree (CONFIG, ARCH=x86_64), runs `make -n -k all` in it and
# writes its file counts and the objects its full build compiles. It changes that tree.
#
# RSS-split mode: RSS_SAMPLE_FROM=profiles/kernel-build/linux-6.1-x86_64-defconfig-subset.json
# [RSS_EVERY=20] [KBW_SAMPLE_MS=5] configures and prepares a fresh tree as above, compiles
# every RSS_EVERY-th unit of that profile again while polling /proc for the compiler's
# anonymous (RssAnon) and file-backed (RssFile) resident memory, and writes
# linux-6.1-x86_64-CONFIG-rss-split.json.
#
# Reuse mode: REUSE_SAMPLE_FROM=profiles/kernel-build/linux-6.1-x86_64-defconfig-subset.json
# [REUSE_EVERY=20] [REUSE_MS="100"] [REUSE_SLICES="8"] configures and prepares a fresh tree as
# above and, for each period T in REUSE_MS (milliseconds), compiles every REUSE_EVERY-th unit of
# that profile while the shim, every T ms, clears the referenced bits of the compiler's (cc1's)
# pages (/proc/PID/clear_refs) and reads back how many of its anonymous pages were referenced
# since (/proc/PID/smaps); then once more for each N in REUSE_SLICES, the intervals being 1/N of
# each unit's measured CPU time as cc1 runs it. The objects are deleted before each pass.
# Writes linux-6.1-x86_64-CONFIG-reuse.json.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/scripts/apt-install.sh"
JOBS=${JOBS:-2}
CONFIG=${CONFIG:-defconfig}
TARGETS=${TARGETS-"init/ kernel/ mm/ fs/ lib/ block/ ipc/ security/ net/ipv4/ drivers/base/"}
WORK=${WORK:-/tmp/kbuild-measure}
if [[ -n ${RSS_SAMPLE_FROM:-} ]]; then
  OUT=${OUT:-$repo/profiles/kernel-build/linux-6.1-x86_64-$CONFIG-rss-split.json}
  RSS_SAMPLE_FROM=$(realpath "$RSS_SAMPLE_FROM")
elif [[ -n ${REUSE_SAMPLE_FROM:-} ]]; then
  OUT=${OUT:-$repo/profiles/kernel-build/linux-6.1-x86_64-$CONFIG-reuse.json}
  REUSE_SAMPLE_FROM=$(realpath "$REUSE_SAMPLE_FROM")
else
  OUT=${OUT:-$repo/profiles/kernel-build/linux-6.1-x86_64-$CONFIG${TARGETS:+-subset}.json}
fi
KEEP_WORK=${KEEP_WORK:-0}
KEEP_RECORDS=${KEEP_RECORDS:-0}
PKG=linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz
helper=$repo/scripts/kbuild-profile.py

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ -n ${DRYRUN_TREE:-} ]]; then
  : "${SOURCE:?SOURCE must say where the tree came from}"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 "$helper" snapshot "$DRYRUN_TREE" "$tmp/pristine.json"
  log "dry run of $DRYRUN_TREE: make ARCH=x86_64 $CONFIG; make -n -k all"
  (cd "$DRYRUN_TREE" && nice -n 19 make -s ARCH=x86_64 "$CONFIG" >"$tmp/config.out" 2>&1)
  (cd "$DRYRUN_TREE" && nice -n 19 make ARCH=x86_64 -n -k all >"$tmp/dryrun.txt" 2>"$tmp/dryrun.err") || true
  python3 "$helper" dryrun "$DRYRUN_TREE" "$tmp/dryrun.txt" "$tmp/dryrun.json"
  python3 "$helper" dryrun-profile --tree "$DRYRUN_TREE" --snapshot "$tmp/pristine.json" \
    --dryrun "$tmp/dryrun.json" --dryrun-err "$tmp/dryrun.err" --source "$SOURCE" \
    --config "$CONFIG" --out "$OUT"
  exit 0
fi

# -- packages
packages=($PKG build-essential bc flex bison libelf-dev libssl-dev time xz-utils python3 cpio kmod)
apt_install_missing measure-kernel-build "${packages[@]}"
[[ -f $TARBALL ]] || { echo "missing $TARBALL (package $PKG)" >&2; exit 1; }

# -- scratch folder, unpack
case $WORK in /tmp/*|/var/tmp/*|/work/*) ;; *) echo "WORK must be under /tmp, /var/tmp or /work" >&2; exit 1;; esac
rm -rf "$WORK"
mkdir -p "$WORK"/{shim,logs,runs,snapshots}
for t in gcc ld ar; do ln -s "$repo/scripts/kbuild-wrap.py" "$WORK/shim/$t"; done
log "unpacking $TARBALL"
tar -C "$WORK" -xf "$TARBALL"
tree=$WORK/linux-source-6.1
python3 "$helper" snapshot "$tree" "$WORK/snapshots/pristine.json"

# ARCH=x86_64 on every make: with ARCH=x86 (the default) an allnoconfig-based target such as
# tinyconfig would configure a 32-bit kernel
mk=(nice -n 19 make ARCH=x86_64)
export PATH=$WORK/shim:$PATH
export KBW_LOG_DIR KBW_PHASE
phase() { # phase NAME CMD...: run CMD measured, its tool calls recorded under logs/NAME
  local name=$1; shift
  KBW_PHASE=$name
  KBW_LOG_DIR=$WORK/logs/$name
  mkdir -p "$KBW_LOG_DIR"
  log "$name: $*"
  (cd "$tree" && python3 "$helper" run "$WORK/runs/run-$name.json" -- "$@")
}

write_provenance() { # write_provenance FILE COMMAND
  local pkg_version kver
  pkg_version=$(dpkg-query -W -f='${Version}' $PKG)
  kver=$(awk '/^VERSION =/{v=$3} /^PATCHLEVEL =/{p=$3} /^SUBLEVEL =/{s=$3} END{print v"."p"."s}' "$tree/Makefile")
  python3 - "$1" "$2" "$repo" "$PKG" "$pkg_version" "$TARBALL" "$kver" "$CONFIG" "$tree/.config" \
    "$TARGETS" "$JOBS" <<'EOF'
import json, os, subprocess, sys, time
out_file, command, repo, pkg, version, tarball, kver, config, dotconfig, targets, jobs = sys.argv[1:]
def out(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
git = out("git", "-C", repo, "rev-parse", "HEAD")
dirty = out("git", "-C", repo, "status", "--porcelain", "--", "scripts/measure-kernel-build.sh",
            "scripts/kbuild-wrap.py", "scripts/kbuild-profile.py")
json.dump({
    "package": pkg,
    "version": version,
    "tarball": tarball,
    "tarball_sha256": out("sha256sum", tarball).split()[0],
    "kernel_version": kver,
    "arch": "x86_64",
    "config": config,
    "config_sha256": out("sha256sum", dotconfig).split()[0],
    "targets": targets.split(),
    "jobs": int(jobs),
    "command": command,
    "machine": {"cpu_model": cpu, "cores": os.cpu_count(), "mem_kib": mem, "kernel": out("uname", "-r")},
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "gcc_version": out("/usr/bin/gcc", "--version").splitlines()[0],
    "binutils_version": out("/usr/bin/ld", "--version").splitlines()[0],
    "make_version": out("make", "--version").splitlines()[0],
    "python_version": out("python3", "--version"),
    "script": "scripts/measure-kernel-build.sh",
    "script_commit": git + ("+local-changes" if dirty else ""),
}, open(out_file, "w"), indent=1)
EOF
}

finish() {
  if [[ $KEEP_WORK == 1 ]]; then
    :
  elif [[ $KEEP_RECORDS == 1 ]]; then
    log "removing $tree (the records stay in $WORK)"
    rm -rf "$tree"
  else
    log "removing $WORK"
    rm -rf "$WORK"
  fi
  log "done: $OUT"
}

phase config "${mk[@]}" -s "$CONFIG"
phase prepare "${mk[@]}" -s -j"$JOBS" prepare
python3 "$helper" snapshot "$tree" "$WORK/snapshots/prepared.json"

if [[ -n ${RSS_SAMPLE_FROM:-} ]]; then
  # RSS split mode: compile every RSS_EVERY-th unit of an existing profile again, polling
  # /proc every KBW_SAMPLE_MS ms for the compiler's anonymous and file-backed resident memory
  objs=$(python3 "$helper" pick --profile "$RSS_SAMPLE_FROM" --every "${RSS_EVERY:-20}")
  TARGETS=$objs
  export KBW_SAMPLE_MS=${KBW_SAMPLE_MS:-5}
  # shellcheck disable=SC2086
  phase sample "${mk[@]}" -j"$JOBS" $objs >"$WORK/sample.out" 2>&1 || {
    tail -30 "$WORK/sample.out" >&2; exit 1; }
  write_provenance "$WORK/provenance.json" \
    "KBW_SAMPLE_MS=$KBW_SAMPLE_MS ${mk[*]} -j$JOBS (every ${RSS_EVERY:-20}th object of $(basename "$RSS_SAMPLE_FROM"))"
  mkdir -p "$(dirname "$OUT")"
  python3 "$helper" rss-split --tree "$tree" --logs "$WORK/logs/sample" \
    --provenance "$WORK/provenance.json" --run "$WORK/runs/run-sample.json" \
    --sample-ms "$KBW_SAMPLE_MS" --out "$OUT"
  finish
  exit 0
fi

if [[ -n ${REUSE_SAMPLE_FROM:-} ]]; then
  # reuse mode: compile every REUSE_EVERY-th unit of an existing profile once per period in
  # REUSE_MS (the shim sampling cc1's referenced anonymous pages every period) and once per
  # slicing in REUSE_SLICES (every 1/N of the unit's measured CPU time, as cc1 runs it)
  objs=$(python3 "$helper" pick --profile "$REUSE_SAMPLE_FROM" --every "${REUSE_EVERY:-20}" \
    --cpu-out "$WORK/unit-cpu.json")
  TARGETS=$objs
  REUSE_MS=${REUSE_MS-100}
  REUSE_SLICES=${REUSE_SLICES-8}
  export KBW_REUSE_MS KBW_REUSE_SLICES KBW_REUSE_CPU=$WORK/unit-cpu.json
  reuse_pass() { # reuse_pass NAME: compile the objects again, measured under logs/NAME
    # shellcheck disable=SC2086
    (cd "$tree" && rm -f $objs)
    # shellcheck disable=SC2086
    phase "$1" "${mk[@]}" -j"$JOBS" $objs >"$WORK/$1.out" 2>&1 || {
      tail -30 "$WORK/$1.out" >&2; exit 1; }
  }
  KBW_REUSE_SLICES=
  for ms in $REUSE_MS; do KBW_REUSE_MS=$ms; reuse_pass "reuse-$ms"; done
  KBW_REUSE_MS=
  for n in $REUSE_SLICES; do KBW_REUSE_SLICES=$n; reuse_pass "reuse-slices$n"; done
  unset KBW_REUSE_MS KBW_REUSE_SLICES KBW_REUSE_CPU
  # shellcheck disable=SC2086
  write_provenance "$WORK/provenance.json" \
    "for T in $REUSE_MS: KBW_REUSE_MS=T ${mk[*]} -j$JOBS; for N in $REUSE_SLICES: KBW_REUSE_SLICES=N ${mk[*]} -j$JOBS (every ${REUSE_EVERY:-20}th object of $(basename "$REUSE_SAMPLE_FROM"), deleted before each)"
  mkdir -p "$(dirname "$OUT")"
  # shellcheck disable=SC2086
  python3 "$helper" reuse --tree "$tree" --logs "$WORK/logs" --runs "$WORK/runs" \
    --periods $REUSE_MS --slices $REUSE_SLICES --provenance "$WORK/provenance.json" --out "$OUT"
  finish
  exit 0
fi

# every object a full build compiles; -k goes on past the link steps a dry run cannot do
unset KBW_LOG_DIR
(cd "$tree" && python3 "$helper" run "$WORK/runs/run-dryrun.json" -- \
  "${mk[@]}" -n -k all >"$WORK/dryrun.txt" 2>"$WORK/dryrun.err") || true
python3 "$helper" dryrun "$tree" "$WORK/dryrun.txt" "$WORK/dryrun.json"
export KBW_LOG_DIR

log "build: make -j$JOBS ${TARGETS:-all} (output in $WORK/build.out)"
# shellcheck disable=SC2086
phase build "${mk[@]}" -j"$JOBS" $TARGETS >"$WORK/build.out" 2>&1 || {
  tail -30 "$WORK/build.out" >&2; exit 1; }
python3 "$helper" snapshot "$tree" "$WORK/snapshots/built.json"
phase clean "${mk[@]}" -s clean
python3 "$helper" snapshot "$tree" "$WORK/snapshots/cleaned.json"
phase prepare_after_clean "${mk[@]}" -s -j"$JOBS" prepare

write_provenance "$WORK/provenance.json" "${mk[*]} -j$JOBS${TARGETS:+ $TARGETS}"
mkdir -p "$(dirname "$OUT")"
python3 "$helper" assemble --tree "$tree" --logs "$WORK/logs" --runs "$WORK/runs" \
  --snapshots "$WORK/snapshots" --dryrun "$WORK/dryrun.json" \
  --provenance "$WORK/provenance.json" --out "$OUT"
finish
