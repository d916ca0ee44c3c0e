#!/usr/bin/env bash
# Runs every seed 000 reproduction and prints one comparison table (markdown) from the
# results. Usage: scripts/sweep-seed000.sh [OUTDIR]   (default out/seed000-sweep)
# Expect about an hour on 2 cores: the KSM density search and four 516-VM runs dominate.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/seed000-sweep}
bin=build/release/memvirt
[ -x "$bin" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 2; }
runs=(seed000-raw seed000-ksm seed000-ppr-pageone seed000-ppr-pageone-r5-m200
      seed000-ppr-pageone-r5-m600 seed000-ppr-pageone-r10-m200)
for r in "${runs[@]}"; do
  echo "== $r" >&2
  "$bin" run -q "scenarios/$r.yaml" -o "$out/$r" > "$out.$r.log" 2>&1 || { cat "$out.$r.log" >&2; exit 1; }
done
python3 - "$out" "${runs[@]}" <<'PY'
import json, sys
out, runs = sys.argv[1], sys.argv[2:]
print("| scenario | VMs | host GiB min / avg / max | reference | CPU % (of one core; workers per thread) |")
print("| --- | --- | --- | --- | --- |")
for r in runs:
    j = json.load(open(f"{out}/{r}/results.json"))
    h = j["host_memory_gib"]
    ref = j.get("reference", {})
    refs = ", ".join(f"{k} {v}" for k, v in ref.items() if k != "source")
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in j["cpu_percent"].items() if k not in ("guest_vcpus", "host_fault_in"))
    print(f"| {r} | {j['vms']} | {h['min']:.1f} / {h['avg']:.1f} / {h['max']:.1f} | {refs} | {cpu} |")
PY
