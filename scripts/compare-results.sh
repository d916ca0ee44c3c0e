#!/usr/bin/env bash
# Runs every scenario in scenarios/ with two memvirt binaries and compares their results.json:
# a refactoring must leave every result as it was.
#
#   scripts/compare-results.sh OLD_MEMVIRT NEW_MEMVIRT [OUT_DIR] [--quick] [--old-tree DIR]
#
# --old-tree DIR runs the old binary on DIR/scenarios/ (a checkout of the old commit, e.g.
# `git worktree add DIR OLD_COMMIT`), for a change that rewrote scenario files too; the new
# binary runs on this tree's scenarios/, file by file under the same names.
# The files must be byte-identical, except for differences listed in KNOWN below, each a
# deliberate change of the results.json format: the comparison checks that such a difference
# is exactly the listed one and nothing else. --quick shortens the full-scale seed 000 runs
# (516 VMs) to 20 simulated minutes and turns the density searches into fixed runs of 8 VMs,
# on both sides alike; without it a run takes about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: compare-results.sh OLD_MEMVIRT NEW_MEMVIRT [OUT_DIR] [--quick] [--old-tree DIR]}
new=${2:?usage: compare-results.sh OLD_MEMVIRT NEW_MEMVIRT [OUT_DIR] [--quick] [--old-tree DIR]}
out=out/compare-results
quick=0
old_tree=.
shift 2
[ $# -gt 0 ] && [ "${1#--}" = "$1" ] && { out=$1; shift; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --old-tree) old_tree=${2:?--old-tree needs a folder}; shift ;;
    *) echo "compare-results.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
old_tree=$(cd "$old_tree" && pwd)
old=$(cd "$(dirname "$old")" && pwd)/$(basename "$old")
new=$(cd "$(dirname "$new")" && pwd)/$(basename "$new")
mkdir -p "$out/old" "$out/new"
out=$(cd "$out" && pwd)

failed=0
for f in scenarios/*.yaml; do
  n=$(basename "$f" .yaml)
  args=()
  if ((quick)); then
    case "$n" in
      seed000-ppr-pageone*) args=(-p experiment.duration=20min -p experiment.warmup=0s) ;;
      seed000-raw* | seed000-ksm) args=(-p experiment.type=fixed -p experiment.vms=8) ;;
    esac
  fi
  for side in old new; do
    bin=$new tree=.
    [ "$side" = old ] && bin=$old tree=$old_tree
    if ! (cd "$tree" && "$bin" run "scenarios/$n.yaml" -q -o "$out/$side/$n" "${args[@]}") \
        >"$out/$side/$n.log" 2>&1; then
      echo "$n: the $side binary failed (see $out/$side/$n.log)"
      failed=1
    fi
  done
  python3 - "$out/old/$n/results.json" "$out/new/$n/results.json" "$n" <<'PY' || failed=1
import json, sys

old_file, new_file, name = sys.argv[1:4]
old_text, new_text = open(old_file).read(), open(new_file).read()
if old_text == new_text:
    print(f"{name}: identical")
    sys.exit(0)
old, new = json.loads(old_text), json.loads(new_text)
notes = []

# KNOWN 1: the per-mechanism stats moved from "mechanisms" (keyed by impl, so two entries of
# one impl overwrote each other) to the stats tree, at the entry's place in `reclaim:`; new
# stats may be added there, but every old one keeps its value.
mech = old.pop("mechanisms", None)
stats = new.pop("stats", None)
if mech is not None:
    entries = (stats or {}).get("reclaim", [])
    for impl, values in mech.items():
        found = [e for e in entries if e.get("impl") == impl]
        if len(found) != 1:
            print(f"{name}: DIFFERENT: {len(found)} stats entries for mechanism {impl}")
            sys.exit(1)
        for k, v in values.items():
            if found[0].get(k) != v:
                print(f"{name}: DIFFERENT: {impl}.{k}: {v} then {found[0].get(k)}")
                sys.exit(1)
    notes.append("mechanisms -> stats.reclaim")
if stats is not None:
    notes.append("stats tree added")

if old != new:
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            print(f"{name}: DIFFERENT at {k}: {json.dumps(old.get(k))[:200]} then "
                  f"{json.dumps(new.get(k))[:200]}")
    sys.exit(1)
print(f"{name}: identical except the known format changes ({'; '.join(notes)})")
PY
done
exit $failed
