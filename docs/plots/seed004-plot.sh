#!/usr/bin/env bash
# Draws docs/plots/seed004-cycles-per-miss.png and docs/plots/seed004-overhead.png from the
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
# The per-miss ratios the seed reports: nested paging, VMM Direct, Guest Direct. (Dual Direct's
# and direct segment's few misses are escapes and cold misses; see the overhead plot.)
table 12 1 | awk 'NR == 1 || $1 ~ /^(virtual-4K\+4K|virtual-2M\+2M|vmm-direct|guest-direct)$/' \
  > "$tmp/ratio.dat"
table 13 100 > "$tmp/overhead.dat"
ncol=$(head -1 "$tmp/ratio.dat" | wc -w)
gnuplot <<GP
set terminal pngcairo size 1100,600 font "sans,10" noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left autotitle columnheader
set xtics norotate scale 0
set grid ytics
set output "$here/seed004-cycles-per-miss.png"
set title "Seed 004: cycles per TLB miss over base native (same guest page size), simulated"
set ylabel "cycles per miss / native"
set yrange [0:*]
set key top right
set arrow 1 from graph 0, first 2.4 to graph 1, first 2.4 nohead dt 2 lc rgb "#aa0000"
set label 1 "seed: nested 2.4x" at graph 0.01, first 2.4 offset 0,0.6 font "sans,9"
set arrow 2 from graph 0, first 1.5 to graph 1, first 1.5 nohead dt 2 lc rgb "#aa0000"
set label 2 "seed: nested 1.5x" at graph 0.01, first 1.5 offset 0,0.6 font "sans,9"
set arrow 3 from graph 0, first 1.13 to graph 1, first 1.13 nohead dt 3 lc rgb "#0000aa"
set label 3 "seed: VMM Direct 1.13x" at graph 0.01, first 1.13 offset 0,0.6 font "sans,9"
set arrow 4 from graph 0, first 1.03 to graph 1, first 1.03 nohead dt 3 lc rgb "#006600"
set label 4 "seed: Guest Direct 1.03x" at graph 0.01, first 1.03 offset 0,-0.8 font "sans,9"
plot for [i=2:$ncol] "$tmp/ratio.dat" using i:xtic(1)
unset arrow; unset label; set key top left; set xtics rotate by -30 left; set bmargin 6
set output "$here/seed004-overhead.png"
set title "Seed 004: page-walk cycles as a share of run time, simulated"
set ylabel "translation overhead (%)"
set logscale y
set yrange [0.001:*]
plot for [i=2:$ncol] "$tmp/overhead.dat" using (column(i) > 0 ? column(i) : 0.001):xtic(1)
GP
echo "wrote $here/seed004-cycles-per-miss.png $here/seed004-overhead.png"
