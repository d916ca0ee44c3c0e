#!/usr/bin/env bash
# One table, all mechanisms, same workloads: runs the workloads of seeds 000, 001 and 002 under
# no mechanism, a static balloon, free page hinting v8, free page reporting at order 9 and at
# order 0, and PPR; prints a Markdown table and plots host memory over time with gnuplot.
#
#   scripts/compare-mechanisms.sh [OUT_DIR]     (default: out/compare)
#
# Every run is an ordinary scenario run with -p overrides, so each cell can be reproduced by
# hand: the command of each run is in OUT_DIR/commands.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMVIRT=${MEMVIRT:-build/release/memvirt}
OUT=${1:-out/compare}
[[ -x $MEMVIRT ]] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "gnuplot not found: run scripts/setup.sh" >&2; exit 2; }
mkdir -p "$OUT"
: > "$OUT/commands.txt"

# Mechanisms as -p overrides of a scenario's empty `reclaim:` list. The static balloon takes a
# tenth of guest memory at launch (the same rule for every workload).
mechanisms=(none balloon hinting reporting9 reporting0 ppr)
mech_args() {
  local guest_mib=$1
  case $2 in
    none) ;;
    balloon) echo "-p reclaim.0.impl=balloon -p reclaim.0.targets.0.at=0s -p reclaim.0.targets.0.size=$((guest_mib / 10))MiB" ;;
    hinting) echo "-p reclaim.0.impl=hinting" ;;
    reporting9) echo "-p reclaim.0.impl=reporting -p reclaim.0.order=9" ;;
    reporting0) echo "-p reclaim.0.impl=reporting -p reclaim.0.order=0" ;;
    ppr) echo "-p reclaim.0.impl=ppr" ;;
  esac
}

# Workloads: seed 000's application on 8 VMs for 2 h; seed 001's launch-until-OOM; seed 002's
# memhog then page_fault1 (THP) and page_fault2 with one task.
workloads=(seed000 seed001 seed002)
workload_args() {
  case $1 in
    seed000) echo "scenarios/seed000-raw.yaml -p experiment.type=fixed -p experiment.vms=8 4096" ;;
    seed001) echo "scenarios/seed001-none.yaml 5120" ;;
    seed002) echo "scenarios/seed002-baseline.yaml 32768" ;;
  esac
}

for w in "${workloads[@]}"; do
  read -r -a wa <<<"$(workload_args "$w")"
  guest_mib=${wa[-1]}
  unset 'wa[-1]'
  for m in "${mechanisms[@]}"; do
    dir="$OUT/$w-$m"
    # shellcheck disable=SC2046
    cmd="$MEMVIRT run ${wa[*]} $(mech_args "$guest_mib" "$m") -q -o $dir"
    echo "$cmd" >>"$OUT/commands.txt"
    printf '%-8s %-11s ' "$w" "$m" >&2
    $cmd >"$dir.log" 2>&1 || { echo "failed, see $dir.log" >&2; exit 1; }
    if [[ $w == seed001 ]]; then
      # One guest alone, sampled every second: how fast its program's memory comes back.
      cmd="$MEMVIRT run ${wa[*]} $(mech_args "$guest_mib" "$m") -p experiment.max_vms=1 -p experiment.duration=5min -p experiment.sample_interval=1s -q -o $dir-1vm"
      echo "$cmd" >>"$OUT/commands.txt"
      $cmd >"$dir-1vm.log" 2>&1 || { echo "failed, see $dir-1vm.log" >&2; exit 1; }
    fi
    echo done >&2
  done
done

# A number from results.json (flattened, keys sorted) by the text that leads to it.
json() {
  local file=$1 lead=$2
  tr -d '\n ' <"$file" | grep -o "$lead[-0-9.e+]*" | tail -1 | sed "s/.*://"
}
cpu_s() {  # cpu_seconds of an account, 0 when absent
  local file=$1 account=$2
  tr -d '\n ' <"$file" | grep -o "\"$account\":{\"cpu_seconds\":[-0-9.e+]*" | head -1 |
    sed 's/.*://' || true
}
# Seconds from the end of the first program (host memory at its peak) until host memory has
# given back 90% of what it will give back in that VM's quiet time (next 120 s).
return_time() {
  awk -F, 'NR > 1 { t[NR] = $1; m[NR] = $2; n = NR }
    END {
      peak = 2; for (i = 2; i <= n; i++) if (m[i] > m[peak]) peak = i;
      low = m[peak]; for (i = peak; i <= n && t[i] <= t[peak] + 120; i++) if (m[i] < low) low = m[i];
      if (m[peak] - low < 0.01) { print "never"; exit }
      target = m[peak] - 0.9 * (m[peak] - low);
      for (i = peak; i <= n; i++) if (m[i] <= target) { printf "%.0f s", t[i] - t[peak]; exit }
    }' "$1"
}

table="$OUT/table.md"
{
  echo "| workload | mechanism | VMs | host GiB avg | host GiB max | free -> host | guest CPU s | host CPU s | pf1 ops/s | pf2 ops/s |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for w in "${workloads[@]}"; do
    for m in "${mechanisms[@]}"; do
      r="$OUT/$w-$m/results.json"
      vms=$(json "$r" '"vms":')
      avg=$(json "$r" '"host_memory_gib":{"avg":')
      max=$(json "$r" '"host_memory_gib":{"avg":[-0-9.e+]*,"max":')
      guest=$(cpu_s "$r" guest_vcpus)
      host=0
      for a in host_fault_in qemu_discard ppr_pageone_daemon pageone_workers; do
        v=$(cpu_s "$r" "$a"); host=$(awk -v a="$host" -v b="${v:-0}" 'BEGIN { print a + b }')
      done
      ret="-"
      [[ $w == seed001 ]] && ret=$(return_time "$OUT/$w-$m-1vm/timeseries.csv")
      ops=$(tr -d '\n ' <"$r" | grep -o '"workload_ops_per_s":\[[^]]*\]' | sed 's/.*\[//; s/\]//')
      pf1=$(echo "$ops" | awk -F, '{ printf "%.0f", $2 }')
      pf2=$(echo "$ops" | awk -F, '{ printf "%.0f", $3 }')
      [[ $w == seed002 ]] || { pf1=-; pf2=-; }
      printf '| %s | %s | %s | %.1f | %.1f | %s | %.2f | %.2f | %s | %s |\n' \
        "$w" "$m" "$vms" "$avg" "$max" "$ret" "${guest:-0}" "$host" "$pf1" "$pf2"
    done
  done
} >"$table"
cat "$table"

# Host memory over time: one panel per workload, one line per mechanism.
plot="$OUT/host-memory.png"
gp="$OUT/host-memory.gp"
{
  echo "set terminal pngcairo size 1500,500 noenhanced font ',10'"
  echo "set output '$plot'"
  echo "set datafile separator ','"
  echo "set key top left"
  echo "set xlabel 'time (min)'"
  echo "set ylabel 'host memory used (GiB)'"
  echo "set multiplot layout 1,3"
  for w in "${workloads[@]}"; do
    echo "set title '$w'"
    line="plot"
    for m in "${mechanisms[@]}"; do
      line+=" '$OUT/$w-$m/timeseries.csv' every ::1 using (\$1/60):2 with lines lw 2 title '$m',"
    done
    echo "${line%,}"
  done
  echo "unset multiplot"
} >"$gp"
gnuplot "$gp"
echo "plot: $plot" >&2
