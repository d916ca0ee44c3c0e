#!/usr/bin/env bash
# One table, all policies, same workloads (issue 14's comparison): runs every scenario under
# scenarios/policy/ as a carry experiment under no policy and under each policy, prints a
# Markdown table and plots the VMs carried with gnuplot.
#
#   scripts/policy-table.sh [OUT_DIR] [WORKLOAD...]    (default: out/policies, every workload)
#
# Every cell is an ordinary `memvirt run` with -p overrides; the commands are in
# OUT_DIR/commands.txt. Runs two at a time (one per core).
set -euo pipefail
cd "$(dirname "$0")/.."
MEMVIRT=${MEMVIRT:-build/release/memvirt}
OUT=${1:-out/policies}
shift || true
[[ -x $MEMVIRT ]] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "gnuplot not found: run scripts/setup.sh" >&2; exit 2; }
workloads=("$@")
if [[ ${#workloads[@]} -eq 0 ]]; then
  workloads=(seed000-periodic seed001-launch kernel-build idle-cache bursty)
fi
policies=(none partition dmc mom ksmtuned dynamic_memory senpai memvirt)
mkdir -p "$OUT"
: > "$OUT/commands.txt"
for w in "${workloads[@]}"; do
  [[ -f scenarios/policy/$w.yaml ]] || { echo "no scenario scenarios/policy/$w.yaml" >&2; exit 2; }
  for p in "${policies[@]}"; do
    if [[ $p == none ]]; then arg="-p policy=none"; else arg="-p policy.impl=$p"; fi
    echo "$MEMVIRT run scenarios/policy/$w.yaml $arg -o $OUT/$w/$p" >> "$OUT/commands.txt"
  done
done
# Two runs at a time; each run's summary goes to its own log.
n=0
while read -r cmd; do
  dir=${cmd##* -o }
  mkdir -p "$dir"
  ( $cmd > "$dir.log" 2>&1 || echo "failed: $cmd (see $dir.log)" >&2 ) &
  n=$((n + 1))
  if (( n % 2 == 0 )); then wait; fi
  echo "  $(( n )) of $(wc -l < "$OUT/commands.txt") runs started" >&2
done < "$OUT/commands.txt"
wait

python3 - "$OUT" "${workloads[*]}" "${policies[*]}" <<'PY'
import json, sys, os
out, workloads, policies = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
rows = []
print("| workload | policy | VMs carried | host GiB avg / max | slowdown | major faults | refaults | guest OOM kills | host CPU s |")
print("|---|---|---|---|---|---|---|---|---|")
for w in workloads:
    for p in policies:
        f = os.path.join(out, w, p, "results.json")
        if not os.path.exists(f):
            print(f"| {w} | {p} | (no result) | | | | | | |"); rows.append((w, p, 0)); continue
        r = json.load(open(f)); run = r["run"]; m = r["host_memory_gib"]
        sd = r.get("slowdown")
        sd = "-" if sd is None else f"{100*sd:+.1f}%"
        print(f"| {w} | {p} | {r['vms']} | {m['avg']:.1f} / {m['max']:.1f} | {sd} | "
              f"{run['major_faults']} | {run['refaults']} | {run['guest_oom_kills']} | "
              f"{run['host_cpu_seconds']:.1f} |")
        rows.append((w, p, r["vms"]))
with open(os.path.join(out, "carried.dat"), "w") as f:
    f.write("workload " + " ".join(policies) + "\n")
    for w in workloads:
        f.write(w + " " + " ".join(str(v) for (ww, p, v) in rows if ww == w) + "\n")
PY
gnuplot <<GP
set terminal pngcairo size 1000,500 noenhanced
set output "$OUT/policies-carried.png"
set style data histograms
set style histogram clustered gap 1
set style fill solid border -1
set ylabel "VMs carried (slowdown <= 10%, no OOM kill)"
set key outside right
set xtics rotate by -20
plot for [c=2:$(( ${#policies[@]} + 1 ))] "$OUT/carried.dat" using c:xtic(1) title columnheader
GP
echo "plot: $OUT/policies-carried.png" >&2
