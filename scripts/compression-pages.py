#!/usr/bin/env python3
"""Pages for scripts/measure-compression.sh, per content class.

  dump-cc1 OUTDIR [--every N] [--age-ms MS] [--max-mib M] [--stop FILE]
      Polls /proc for running cc1 processes (gcc's compiler proper) until FILE exists. Every
      N-th cc1 seen is dumped once, after it has run for MS milliseconds: it is stopped
      (SIGSTOP), the resident pages of its private writable anonymous mappings (the [heap] and
      unnamed mappings: obstacks, GC pages, mmapped arenas) are read through /proc/PID/pagemap
      and /proc/PID/mem and written to OUTDIR/cc1-N-PID.pages, then it continues (SIGCONT).
      Pages never touched are not resident and are left out, so the dump holds what cc1 really
      has in memory. Stops dumping after M MiB. Needs root (CAP_SYS_PTRACE, and pagemap's
      present bits). Writes OUTDIR/dumps.json: the processes dumped, their units and pages.
  lists --tree TREE --out DIR [--pages N] [--seed S] [--heap DIR]
      Writes DIR/<class>.list, one file per line, for every class: source (the .c and .S files
      the build compiled, from make's .cmd files), header (the headers the build read, from the
      .cmd files' dependency lists, Kconfig files, linker scripts), object (.o, .a built in
      TREE), text (make's .cmd files in TREE), binary (ELF executables and shared libraries under /usr/bin,
      /usr/lib/x86_64-linux-gnu and gcc's cc1), compiler_heap (the dumps in DIR from
      dump-cc1). Files are taken in a seeded random order until N pages are listed, so a large
      class is sampled evenly rather than by directory, and no further once one more would
      pass N; a file counts at most about N/64 pages, as
      `memvirt bench tmem --class-file-pages` then samples it (every k-th page), so that a few
      large files cannot fill a class. DIR/lists.json: files and pages per class.
"""
import argparse
import json
import os
import random
import signal
import struct
import sys
import time

PAGE = 4096


def anon_ranges(pid):
    """(start, end, name) of the private writable anonymous mappings of pid."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            addrs, perms = parts[0], parts[1]
            name = parts[5].strip() if len(parts) > 5 else ""
            if not perms.startswith("rw") or perms[3] != "p":
                continue
            if name not in ("", "[heap]"):
                continue
            lo, hi = (int(x, 16) for x in addrs.split("-"))
            out.append((lo, hi, name or "anon"))
    return out


def dump_process(pid, out):
    """Appends pid's resident anonymous pages to out; returns {mapping kind: pages}."""
    counts = {}
    with open(f"/proc/{pid}/pagemap", "rb") as pm, open(f"/proc/{pid}/mem", "rb") as mem:
        for lo, hi, name in anon_ranges(pid):
            n = (hi - lo) // PAGE
            pm.seek(lo // PAGE * 8)
            entries = pm.read(n * 8)
            for i in range(len(entries) // 8):
                (e,) = struct.unpack_from("<Q", entries, i * 8)
                if not (e >> 63) & 1:  # not present (never touched, or swapped)
                    continue
                mem.seek(lo + i * PAGE)
                try:
                    data = mem.read(PAGE)
                except OSError:
                    continue
                if len(data) != PAGE:
                    continue
                out.write(data)
                counts[name] = counts.get(name, 0) + 1
    return counts


def unit_of(pid):
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return ""
    # the source file, not the value of -dumpbase-ext (".c")
    srcs = [a.decode(errors="replace") for a in args
            if a.endswith((b".c", b".S")) and len(a) > 2 and not a.startswith(b"-")]
    return srcs[-1] if srcs else ""


def cmd_dump_cc1(a):
    seen = {}  # pid -> first seen (monotonic s)
    done = set()
    order = 0
    dumped = []
    total = 0
    limit = a.max_mib << 20
    os.makedirs(a.out, exist_ok=True)
    while not os.path.exists(a.stop):
        now = time.monotonic()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            if pid in done:
                continue
            try:
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                continue
            if comm != "cc1":
                continue
            if pid not in seen:
                seen[pid] = now
                order += 1
                if order % a.every:
                    done.add(pid)  # not one of the sampled processes
                continue
            if now - seen[pid] < a.age_ms / 1000 or total >= limit:
                continue
            done.add(pid)
            unit = unit_of(pid)
            path = os.path.join(a.out, f"cc1-{len(dumped) + 1:04d}-{pid}.pages")
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                continue
            try:
                with open(path, "wb") as out:
                    counts = dump_process(pid, out)
            except OSError:
                counts = {}
            finally:
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
            pages = sum(counts.values())
            total += pages * PAGE
            if pages:
                dumped.append({"pid": pid, "unit": unit, "age_ms": round((now - seen[pid]) * 1000),
                               "file": os.path.basename(path), "pages": counts})
            elif os.path.exists(path):
                os.remove(path)
        time.sleep(0.02)
    json.dump({"processes_seen": order, "every": a.every, "age_ms": a.age_ms, "max_mib": a.max_mib,
               "processes_dumped": len(dumped), "pages": total // PAGE, "dumps": dumped},
              open(os.path.join(a.out, "dumps.json"), "w"), indent=1)


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def walk(root, keep):
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            if keep(name, p):
                yield p


def build_inputs(tree):
    """The sources the build compiled and the headers it read, from make's .cmd files
    (source_X := file; deps_X := the headers gcc -MMD found)."""
    sources, headers = set(), set()
    for cmd in walk(tree, lambda n, p: n.startswith(".") and n.endswith(".cmd")):
        in_deps = False
        for line in open(cmd, errors="replace"):
            line = line.strip()
            if line.startswith("source_") and ":=" in line:
                sources.add(line.split(":=", 1)[1].strip())
            elif line.startswith("deps_") and ":=" in line:
                in_deps = True
            elif in_deps:
                if not line:
                    in_deps = False
                    continue
                dep = line.rstrip("\\").strip()
                if dep.startswith("$(wildcard") or not dep.endswith(".h"):
                    continue
                headers.add(dep)
    resolve = lambda f: f if os.path.isabs(f) else os.path.join(tree, f)
    return ({resolve(f) for f in sources if os.path.isfile(resolve(f))},
            {resolve(f) for f in headers if os.path.isfile(resolve(f))})


def cmd_lists(a):
    t = a.tree
    compiled, read = build_inputs(t)
    classes = {
        # what the build compiled, and the headers it read plus its Kconfig files and linker
        # scripts: the page cache of a kernel build, not every file of the tree
        "source": [p for p in compiled if p.endswith((".c", ".S"))],
        "header": sorted(read) + [p for p in walk(t, lambda n, p: n.startswith("Kconfig")
                                                  or n.endswith((".lds", ".lds.S")))],
        "object": list(walk(t, lambda n, p: n.endswith((".o", ".a")))),
        "text": list(walk(t, lambda n, p: n.startswith(".") and n.endswith(".cmd"))),
        "binary": [p for root in ("/usr/bin", "/usr/lib/x86_64-linux-gnu")
                   for p in walk(root, lambda n, p: is_elf(p))]
                  + [p for p in ("/usr/lib/gcc/x86_64-linux-gnu/12/cc1",) if os.path.exists(p)],
    }
    if a.heap:
        classes["compiler_heap"] = [os.path.join(os.path.abspath(a.heap), n)
                                    for n in os.listdir(a.heap) if n.endswith(".pages")]
    os.makedirs(a.out, exist_ok=True)
    summary = {}
    per_file = max(1, a.pages // 64)
    for cls, files in classes.items():
        files = sorted(set(files))
        random.Random(f"{a.seed}:{cls}").shuffle(files)
        picked, pages = [], 0
        for p in files:
            size = os.path.getsize(p)
            if size == 0:
                continue
            n = (size + PAGE - 1) // PAGE
            n = -(-n // -(-n // per_file))  # what every k-th page of it gives, k = ceil(n / per_file)
            if pages + n > a.pages:
                continue  # a smaller file may still fit
            picked.append(p)
            pages += n
        with open(os.path.join(a.out, cls + ".list"), "w") as f:
            f.writelines(p + "\n" for p in picked)
        summary[cls] = {"files_found": len(files), "files_listed": len(picked), "pages": pages}
    json.dump(summary, open(os.path.join(a.out, "lists.json"), "w"), indent=1)
    json.dump(summary, sys.stdout, indent=1)
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump-cc1")
    d.add_argument("out")
    d.add_argument("--every", type=int, default=4)
    d.add_argument("--age-ms", type=int, default=250)
    d.add_argument("--max-mib", type=int, default=512)
    d.add_argument("--stop", required=True)
    d.set_defaults(fn=cmd_dump_cc1)
    l = sub.add_parser("lists")
    l.add_argument("--tree", required=True)
    l.add_argument("--out", required=True)
    l.add_argument("--pages", type=int, default=40000)
    l.add_argument("--seed", default="1")
    l.add_argument("--heap")
    l.set_defaults(fn=cmd_lists)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
