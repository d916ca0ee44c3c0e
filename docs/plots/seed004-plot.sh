#!/usr/bin/env bash
# Draws docs/plots/seed004-cycles-per-miss.svg and docs/plots/seed004-overhead.svg from the
# results.csv of `memvirt run scenarios/seed004-bigmemory.yaml` (default out/seed004-bigmemory).
# Needs gnuplot (gnuplot-nox).
set -euo pipefail
csv=${1:-out/seed004-bigmemory/results.csv}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One row per configuration, one column per workload: cycles per miss over native and the
# translation overhead in percent.
table() {  # $1 = CSV column
  awk -F, -v col="$1" -v scale="$2" 'NR > 1 {
      if (!($1 in seen_w)) { seen_w[$1] = 1; workloads[++nw] = $1 }
      if (!($2 in seen_c)) { seen_c[$2] = 1; configs[++nc] = $2 }
      v[$2, $1] = $col * scale
    }
    END {
      printf "configuration"; for (w = 1; w <= nw; ++w) printf " %s", workloads[w]; printf "\n"
      for (c = 1; c <= nc; ++c) {
        printf "%s", configs[c]
        for (w = 1; w <= nw; ++w) printf " %g", v[configs[c], workloads[w]]
        printf "\n"
      }
    }' "$csv"
}
table 12 1 > "$tmp/ratio.dat"
table 13 100 > "$tmp/overhead.dat"
ncol=$(head -1 "$tmp/ratio.dat" | wc -w)
gnuplot <<GP
set terminal svg size 1000,520 dynamic font "sans,11"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left autotitle columnheader
set xtics rotate by -35 scale 0
set grid ytics
set output "$here/seed004-cycles-per-miss.svg"
set title "Seed 004: cycles per TLB miss over base native (same guest page size), simulated"
set ylabel "cycles per miss / native"
set arrow from graph 0, first 1.13 to graph 1, first 1.13 nohead dt 2 lc rgb "#444444"
set label "seed: VMM Direct +13%" at graph 0.72, first 1.13 offset 0,0.6 font "sans,9"
plot for [i=2:$ncol] "$tmp/ratio.dat" using i:xtic(1)
unset arrow; unset label
set output "$here/seed004-overhead.svg"
set title "Seed 004: page-walk cycles as a share of run time, simulated"
set ylabel "translation overhead (%)"
set logscale y
set yrange [0.001:*]
plot for [i=2:$ncol] "$tmp/overhead.dat" using (column(i) > 0 ? column(i) : 0.001):xtic(1)
GP
echo "wrote $here/seed004-cycles-per-miss.svg $here/seed004-overhead.svg"
