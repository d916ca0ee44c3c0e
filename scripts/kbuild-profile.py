#!/usr/bin/python3
"""Helpers of measure-kernel-build.sh: run a measured command, snapshot a tree, parse a dry
run, and assemble the kernel-build profile from the records scripts/kbuild-wrap.py wrote.

  kbuild-profile.py run OUT.json -- CMD...     run CMD, record wall time, the CPU, maximum RSS
                                               and I/O counters of all its descendants
  kbuild-profile.py snapshot TREE OUT.json     every regular file of TREE with its size
  kbuild-profile.py dryrun TREE DRY.txt OUT.json
                                               the compile steps a `make -n` printed
  kbuild-profile.py assemble ARGS...           the profile (see --help of that command)
  kbuild-profile.py dryrun-profile ARGS...     a profile of a configured, dry-run tree only
  kbuild-profile.py pick --profile P --every N the objects of every N-th unit of profile P
  kbuild-profile.py rss-split ARGS...          anonymous and file-backed memory of sampled units
  kbuild-profile.py reuse ARGS...              how much of sampled units' anonymous memory
                                               they reference again, interval by interval
"""
import argparse
import collections
import re
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def read_io():
    with open("/proc/self/io") as f:
        return {k: int(v) for k, v in (line.split(":") for line in f if ":" in line)}


def load(path):
    with open(path) as f:
        return json.load(f)


def dump(obj, path, indent=None):
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent, separators=None if indent else (",", ":"))
        f.write("\n")


# ---------------------------------------------------------------- run


def cmd_run(argv):
    out, rest = argv[0], argv[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    io0 = read_io()
    with open("/proc/loadavg") as f:
        load0 = f.read().split()[:3]
    start = time.time()
    t0 = time.monotonic()
    rc = subprocess.call(rest)
    wall = time.monotonic() - t0
    io1 = read_io()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open("/proc/loadavg") as f:
        load1 = f.read().split()[:3]
    dump({
        "command": rest,
        "rc": rc,
        "start": start,
        "end": start + wall,
        "wall_s": round(wall, 3),
        "user_s": round(ru1.ru_utime - ru0.ru_utime, 3),
        "sys_s": round(ru1.ru_stime - ru0.ru_stime, 3),
        # the largest RSS of any one descendant (Linux keeps the maximum, not a sum)
        "max_rss_kib": ru1.ru_maxrss,
        "io": {k: io1[k] - io0.get(k, 0) for k in io1},
        "loadavg_before": [float(x) for x in load0],
        "loadavg_after": [float(x) for x in load1],
    }, out, indent=1)
    return rc


# ---------------------------------------------------------------- snapshot


def cmd_snapshot(argv):
    tree, out = argv
    files = {}
    dirs = 0
    for root, dnames, fnames in os.walk(tree):
        dirs += len(dnames)
        for n in fnames:
            p = os.path.join(root, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if os.path.isfile(p) and not os.path.islink(p):
                files[os.path.relpath(p, tree)] = st.st_size
    dump({"dirs": dirs, "files": files}, out)
    return 0


def ext_of(path):
    base = os.path.basename(path)
    if base.endswith(".o.cmd") or (base.startswith(".") and base.endswith(".cmd")):
        return ".cmd"
    e = os.path.splitext(base)[1]
    return e if e else "(none)"


def tree_stats(files, dirs):
    by_ext = collections.defaultdict(lambda: [0, 0])
    by_top = collections.defaultdict(lambda: [0, 0])
    for p, s in files.items():
        e = ext_of(p)
        by_ext[e][0] += 1
        by_ext[e][1] += s
        top = p.split("/", 1)[0] if "/" in p else "."
        by_top[top][0] += 1
        by_top[top][1] += s
    get = lambda e: by_ext.get(e, [0, 0])
    return {
        "files": len(files),
        "bytes": sum(files.values()),
        "dirs": dirs,
        "c_files": get(".c")[0], "c_bytes": get(".c")[1],
        "h_files": get(".h")[0], "h_bytes": get(".h")[1],
        "S_files": get(".S")[0], "S_bytes": get(".S")[1],
        "other_files": len(files) - sum(get(e)[0] for e in (".c", ".h", ".S")),
        "other_bytes": sum(files.values()) - sum(get(e)[1] for e in (".c", ".h", ".S")),
        "by_top_dir": {k: {"files": v[0], "bytes": v[1]} for k, v in sorted(by_top.items())},
    }


def ext_summary(files):
    by = collections.defaultdict(lambda: [0, 0])
    for p, s in files.items():
        e = ext_of(p)
        by[e][0] += 1
        by[e][1] += s
    top = sorted(by.items(), key=lambda kv: -kv[1][1])
    return {k: {"files": v[0], "bytes": v[1]} for k, v in top}


# ---------------------------------------------------------------- dry run


def cmd_dryrun(argv):
    """The objects a `make -n` would compile: kbuild echoes '  CC      path.o' (or AS, CC [M])
    before each compile; a dry run prints a recipe more than once, so objects are counted
    once each."""
    tree, dry, out = argv
    pat = re.compile(r"echo '  ([A-Z0-9_]+(?: \[M\])?) +([^']+)'")
    steps = collections.OrderedDict()
    with open(dry, errors="replace") as f:
        for line in f:
            for m in pat.finditer(line):
                steps.setdefault((m.group(1), m.group(2).strip()), None)
    kinds = collections.Counter(k for k, _ in steps)
    units = []
    for kind, target in steps:
        if kind.split()[0] not in ("CC", "AS") or not target.endswith(".o"):
            continue
        base = target[:-2]
        src = None
        for e in (".c", ".S"):
            if os.path.isfile(os.path.join(tree, base + e)):
                src = base + e
                break
        if src is None:  # generated sources (e.g. a module's .mod.c) are made during the build
            src = base + (".S" if kind.startswith("AS") else ".c")
        size = os.path.getsize(os.path.join(tree, src)) if os.path.isfile(os.path.join(tree, src)) else -1
        units.append([target, src, size, kind.endswith("[M]")])
    dump({"step_kinds": dict(sorted(kinds.items())), "units": units}, out)
    return 0


# ---------------------------------------------------------------- assemble


def norm(path, cwd, tree):
    p = path if os.path.isabs(path) else os.path.join(cwd, path)
    p = os.path.normpath(p)
    if p == tree or p.startswith(tree + "/"):
        return os.path.relpath(p, tree)
    return p


def load_records(log_dir):
    recs = []
    for n in os.listdir(log_dir):
        if n.endswith(".json"):
            with open(os.path.join(log_dir, n)) as f:
                recs.append(json.load(f))
    recs.sort(key=lambda r: r["start"])
    return recs


SRC_EXT = (".c", ".S", ".s")


def classify_gcc(rec, tree):
    """('unit', src) for a compile of one tree source to one object; otherwise a category."""
    args = rec["args"]
    out = rec.get("out")
    with_value = {"-o", "-include", "-imacros", "-isystem", "-I", "-x", "-MF", "-MT", "-MQ",
                  "-D", "-U", "-L", "-Xlinker", "-Xassembler", "-T", "-idirafter", "-iquote"}
    inputs = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in with_value:
            skip = True
            continue
        if a.startswith("-"):
            continue
        inputs.append(a)
    if "--version" in args or "-v" in args or "-print-file-name" in " ".join(args) or \
            any(a.startswith("-print-") or a.startswith("-dump") for a in args):
        return "query", None
    # kbuild's try-run probes write into a scratch folder .tmp_PID/ (or to /dev/null)
    if out is None or out == "/dev/null" or re.search(r"(^|/)\.tmp_\d+/", out) \
            or "/dev/null" in inputs or "-" in inputs:
        return "probe", None
    srcs = [a for a in inputs if a.endswith(SRC_EXT)]
    kernel = "-D__KERNEL__" in args
    if "-E" in args:
        return "preprocess", None
    if "-S" in args:
        return "asm-only", None
    if "-c" in args and out.endswith(".o") and len(srcs) == 1 and kernel:
        src = norm(srcs[0], rec["cwd"], tree)
        if not os.path.isabs(src):
            return "unit", src
    if not kernel:
        return "host", None
    return "other", None


def ar_op(args):
    """The operation letter of an ar command line (r, q, t, m, d, x, p, s), or None."""
    if not args:
        return None
    for ch in args[0].lstrip("-"):
        if ch in "dmpqrstx":
            return ch
    return None


def cpu(rec):
    return rec["user_s"] + rec["sys_s"]


def ranges(sorted_idx):
    out = []
    for i in sorted_idx:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def pct(values, q):
    if not values:
        return 0
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist(values, digits=4):
    if not values:
        return {"n": 0}
    r = lambda x: round(x, digits)
    return {"n": len(values), "sum": r(sum(values)), "mean": r(statistics.fmean(values)),
            "median": r(statistics.median(values)), "p10": r(pct(values, 0.1)),
            "p90": r(pct(values, 0.9)), "p99": r(pct(values, 0.99)),
            "min": r(min(values)), "max": r(max(values))}


def cmd_assemble(argv):
    ap = argparse.ArgumentParser(prog="kbuild-profile.py assemble")
    ap.add_argument("--tree", required=True)
    ap.add_argument("--logs", required=True, help="directory with one folder per phase")
    ap.add_argument("--runs", required=True, help="directory with the run-*.json records")
    ap.add_argument("--snapshots", required=True)
    ap.add_argument("--dryrun", required=True)
    ap.add_argument("--provenance", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    tree = os.path.realpath(a.tree)

    prov = load(a.provenance)
    runs = {n[4:-5]: load(os.path.join(a.runs, n)) for n in os.listdir(a.runs)
            if n.startswith("run-") and n.endswith(".json")}
    snap = {n[:-5]: load(os.path.join(a.snapshots, n)) for n in os.listdir(a.snapshots)
            if n.endswith(".json")}
    pristine = snap["pristine"]["files"]
    built = snap["built"]["files"]
    cleaned = snap["cleaned"]["files"]

    recs = load_records(os.path.join(a.logs, "build"))
    build_run = runs["build"]
    t_start = build_run["start"]

    # -- units
    unit_recs = []
    other = collections.defaultdict(lambda: {"count": 0, "cpu_s": 0.0, "max_rss_kib": 0})
    link_recs = []
    shim_cpu = 0.0
    shim_io = collections.Counter()
    for r in recs:
        shim_cpu += r.get("shim_cpu_s", 0)
        shim_io.update(r.get("shim_io", {}))
        if r["tool"] == "gcc":
            kind, src = classify_gcc(r, tree)
            if kind == "unit" and r["rc"] == 0:
                unit_recs.append((r, src))
                continue
        else:
            kind = r["tool"]
            if kind == "ar" and ar_op(r["args"]) not in ("r", "q"):
                # listing (t), moving members (m), ...: makes no archive
                kind = "ar-" + (ar_op(r["args"]) or "?")
            elif r.get("out") and r["rc"] == 0 and not r["out"].startswith("/dev/"):
                link_recs.append(r)
                continue
        o = other[kind]
        o["count"] += 1
        o["cpu_s"] += cpu(r)
        o["max_rss_kib"] = max(o["max_rss_kib"], r["max_rss_kib"])

    # header table: every dependency except the unit's own source, ordered by how many units
    # read it (most first), so the headers nearly every unit reads form long index runs
    use = collections.Counter()
    first = {}
    sizes = {}
    unit_deps = []
    for r, src in unit_recs:
        deps = []
        for p, s in r.get("deps", []):
            q = norm(p, r["cwd"], tree)
            if q == src:
                continue
            deps.append(q)
            sizes[q] = s if s >= 0 else built.get(q, -1)
        deps = list(dict.fromkeys(deps))
        for q in deps:
            first.setdefault(q, len(unit_deps))
        unit_deps.append(deps)
        use.update(deps)
    # ties: in the order units first read them, which keeps a subsystem's headers together
    table = sorted(use, key=lambda p: (-use[p], first[p], p))
    index = {p: i for i, p in enumerate(table)}
    headers = []
    for p in table:
        gen = p not in pristine
        headers.append([p, sizes[p], use[p], 1 if gen else 0])

    units = []
    for (r, src), deps in zip(unit_recs, unit_deps):
        obj = norm(r["out"], r["cwd"], tree)
        idx = sorted(index[p] for p in deps)
        io = r.get("io", {})
        units.append({
            "src": src,
            "src_bytes": pristine.get(src, built.get(src, -1)),
            "src_generated": 0 if src in pristine else 1,
            "module": 1 if "-DMODULE" in r["args"] else 0,
            "n_headers": len(idx),
            "header_bytes": sum(sizes[p] for p in deps),
            "headers": ranges(idx),
            "obj": obj,
            "obj_bytes": built.get(obj, r.get("out_bytes", -1)),
            "obj_bytes_cc": r.get("out_bytes", -1),
            "cpu_s": round(cpu(r), 4),
            "user_s": round(r["user_s"], 4),
            "sys_s": round(r["sys_s"], 4),
            "wall_s": round(r["wall_s"], 4),
            "max_rss_kib": r["max_rss_kib"],
            "minflt": r["minflt"],
            "rchar": io.get("rchar", 0),
            "wchar": io.get("wchar", 0),
            "start_s": round(r["start"] - t_start, 3),
        })

    # -- link and archive steps
    # a thin archive holds no copies: reading it means reading its members. GNU ar flattens a
    # thin archive added to a thin archive, so the members are the objects reached through
    # the archive inputs of the steps that made them (the last step to write a path wins)
    made_by = {}
    for r in link_recs:
        if r["tool"] == "ar" and "T" in r["args"][0]:
            made_by[norm(r["out"], r["cwd"], tree)] = [
                norm(p, r["cwd"], tree) for p in r.get("in_sizes", {})
                if norm(p, r["cwd"], tree) != norm(r["out"], r["cwd"], tree)]

    def members(path, seen=()):
        if path not in made_by or path in seen:
            return [path]
        out = []
        for q in made_by[path]:
            out.extend(members(q, seen + (path,)) if q.endswith(".a") else [q])
        return out

    links = []
    for r in link_recs:
        out = norm(r["out"], r["cwd"], tree)
        ins = []
        for p, s in r.get("in_sizes", {}).items():
            q = norm(p, r["cwd"], tree)
            if q == out:
                continue
            ins.append([q, s])
        kind = r["tool"]
        args = r["args"]
        if kind == "ar":
            kind = "ar-thin" if "T" in args[0] else "ar"
        elif "-r" in args:
            kind = "ld-r"
        mem_bytes = 0
        for q, s in ins:
            if q.endswith(".a") and q in made_by:
                mem_bytes += sum(max(built.get(m, 0), 0) for m in dict.fromkeys(members(q)))
            else:
                mem_bytes += max(s, 0)
        io = r.get("io", {})
        links.append({
            "kind": kind,
            "out": out,
            "out_bytes": built.get(out, r.get("out_bytes", -1)),
            "inputs": ins,
            "input_bytes": sum(max(s, 0) for _, s in ins),
            "input_object_bytes": mem_bytes,
            "cpu_s": round(cpu(r), 4),
            "wall_s": round(r["wall_s"], 4),
            "max_rss_kib": r["max_rss_kib"],
            "rchar": io.get("rchar", 0),
            "wchar": io.get("wchar", 0),
            "start_s": round(r["start"] - t_start, 3),
        })

    # -- tree, build products, make clean
    new_files = {p: s for p, s in built.items() if p not in pristine}
    changed = {p: s for p, s in built.items() if p in pristine and pristine[p] != s}
    deleted = {p: s for p, s in built.items() if p not in cleaned}
    left = {p: s for p, s in cleaned.items() if p not in pristine}
    configured = snap.get("prepared", {}).get("files", {})
    made_by_build = {p: s for p, s in built.items() if p not in configured}

    full_build = full_build_of(load(a.dryrun), {u["src"] for u in units})

    ucpu = [u["cpu_s"] for u in units]
    urss = [u["max_rss_kib"] for u in units]
    lcpu = sum(l["cpu_s"] for l in links)
    other_cpu = sum(o["cpu_s"] for o in other.values())
    total_cpu = build_run["user_s"] + build_run["sys_s"]
    src_read = sum(max(u["src_bytes"], 0) for u in units)
    hdr_read = sum(u["header_bytes"] for u in units)
    obj_written = sum(max(u["obj_bytes"], 0) for u in units)
    link_read = sum(l["input_object_bytes"] for l in links)
    link_written = sum(max(l["out_bytes"], 0) for l in links)
    io = build_run["io"]

    totals = {
        "wall_s": build_run["wall_s"],
        "jobs": prov["jobs"],
        "cpu_s": round(total_cpu, 3),
        "user_s": build_run["user_s"],
        "sys_s": build_run["sys_s"],
        "max_rss_kib": build_run["max_rss_kib"],
        "loadavg_before": build_run["loadavg_before"],
        "loadavg_after": build_run["loadavg_after"],
        "units": len(units),
        "units_c": sum(1 for u in units if u["src"].endswith(".c")),
        "units_S": sum(1 for u in units if u["src"].endswith(".S")),
        "units_module": sum(u["module"] for u in units),
        "links": len(links),
        "links_by_kind": dict(collections.Counter(l["kind"] for l in links)),
        "headers_distinct": len(headers),
        "headers_distinct_bytes": sum(max(h[1], 0) for h in headers),
        "headers_generated": sum(h[3] for h in headers),
        "unit_cpu_s": dist(ucpu),
        "unit_max_rss_kib": dist(urss, 1),
        "unit_wall_s": dist([u["wall_s"] for u in units]),
        "unit_src_bytes": dist([u["src_bytes"] for u in units], 1),
        "unit_n_headers": dist([u["n_headers"] for u in units], 1),
        "unit_header_bytes": dist([u["header_bytes"] for u in units], 1),
        "unit_obj_bytes": dist([u["obj_bytes"] for u in units], 1),
        "unit_rchar": dist([u["rchar"] for u in units], 1),
        "unit_wchar": dist([u["wchar"] for u in units], 1),
        "link_cpu_s": round(lcpu, 3),
        "cpu_units_s": round(sum(ucpu), 3),
        "cpu_other_compiler_calls_s": round(other_cpu, 3),
        "other_compiler_calls": {k: {"count": v["count"], "cpu_s": round(v["cpu_s"], 3),
                                     "max_rss_kib": v["max_rss_kib"]}
                                 for k, v in sorted(other.items())},
        "cpu_rest_s": round(total_cpu - sum(ucpu) - lcpu - other_cpu - shim_cpu, 3),
        "measuring_shim_cpu_s": round(shim_cpu, 3),
        "measuring_shim_rchar": shim_io.get("rchar", 0),
        "bytes_read_sources": src_read,
        "bytes_read_headers": hdr_read,
        "bytes_written_objects": obj_written,
        "bytes_read_by_links": link_read,
        "bytes_written_by_links": link_written,
        "bytes_read_total_model": src_read + hdr_read + link_read,
        "bytes_written_total_model": obj_written + link_written,
        "proc_io": io,
        "proc_io_rchar_less_shim": io.get("rchar", 0) - shim_io.get("rchar", 0),
        "files_created": len(made_by_build),
        "files_created_bytes": sum(made_by_build.values()),
        "files_created_by_ext": ext_summary(made_by_build),
    }

    phases = {}
    for name in ("config", "prepare", "dryrun", "build", "clean", "prepare_after_clean"):
        if name in runs:
            r = runs[name]
            phases[name] = {k: r[k] for k in ("wall_s", "user_s", "sys_s", "max_rss_kib", "io",
                                               "loadavg_before", "loadavg_after", "rc")}
            phases[name]["command"] = " ".join(r["command"])
    for name in ("prepare", "prepare_after_clean"):
        d = os.path.join(a.logs, name)
        if name in phases and os.path.isdir(d):
            pr = load_records(d)
            cnt = collections.Counter()
            for r in pr:
                cnt[r["tool"] if r["tool"] != "gcc" else classify_gcc(r, tree)[0]] += 1
            phases[name]["tool_calls"] = dict(sorted(cnt.items()))
            phases[name]["tool_cpu_s"] = round(sum(cpu(r) for r in pr), 3)

    profile = {
        "format": "memvirt-kernel-build-profile/1",
        "provenance": prov,
        "tree": tree_stats(pristine, snap["pristine"]["dirs"]),
        "tree_after_build": {"files": len(built), "bytes": sum(built.values()),
                             "new_files": len(new_files), "new_bytes": sum(new_files.values()),
                             "changed_files": len(changed)},
        "clean": {
            "files_deleted": len(deleted),
            "bytes_deleted": sum(deleted.values()),
            "deleted_by_ext": ext_summary(deleted),
            "generated_files_left": len(left),
            "generated_bytes_left": sum(left.values()),
            "generated_left_by_ext": ext_summary(left),
        },
        "phases": phases,
        "totals": totals,
        "full_build": full_build,
        "headers": headers,
        "units": units,
        "links": links,
    }
    write_profile(profile, a.out)
    print("profile: %s (%d units, %d links, %d headers, %d bytes)" % (
        a.out, len(units), len(links), len(headers), os.path.getsize(a.out)))
    return 0


def full_build_of(dry, measured_src, how=None):
    full_units = [[src, size, 1 if mod else 0, 1 if src in measured_src else 0]
                  for _, src, size, mod in dry["units"]]
    by_top = collections.Counter(u[0].split("/", 1)[0] for u in full_units)
    by_top_meas = collections.Counter(u[0].split("/", 1)[0] for u in full_units if u[3])
    return {
        "how": how or "make -n -k all on the configured, prepared tree (a dry run: nothing "
                      "built); each '  CC'/'  AS' object counted once",
        "step_kinds": dry["step_kinds"],
        "units": len(full_units),
        "units_module": sum(u[2] for u in full_units),
        "units_measured": sum(u[3] for u in full_units),
        "src_bytes": sum(max(u[1], 0) for u in full_units),
        "units_by_top_dir": dict(sorted(by_top.items())),
        "measured_by_top_dir": dict(sorted(by_top_meas.items())),
        "unit_src_bytes": dist([u[1] for u in full_units if u[1] >= 0], 1),
        "unit_list": full_units,
    }


def script_commit():
    """The repository commit of these scripts, +local-changes if they differ from it."""
    repo = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    run = lambda *c: subprocess.run(c, capture_output=True, text=True, cwd=repo).stdout.strip()
    head = run("git", "rev-parse", "HEAD")
    dirty = run("git", "status", "--porcelain", "--", "scripts/measure-kernel-build.sh",
                "scripts/kbuild-wrap.py", "scripts/kbuild-profile.py")
    return head + ("+local-changes" if dirty else "")


def cmd_dryrun_profile(argv):
    """A profile of a tree that was only configured and dry-run: its files and what a full
    build would compile. For trees this machine cannot build (an old kernel)."""
    ap = argparse.ArgumentParser(prog="kbuild-profile.py dryrun-profile")
    ap.add_argument("--tree", required=True)
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--dryrun", required=True)
    ap.add_argument("--dryrun-err", required=True)
    ap.add_argument("--source", required=True, help="where the tree came from")
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    snap = load(a.snapshot)
    with open(os.path.join(a.tree, "Makefile")) as f:
        mk = f.read()
    ver = {}
    for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
        m = re.search(r"^%s *= *(\S*)" % k, mk, re.M)
        ver[k] = m.group(1) if m else ""
    with open(a.dryrun_err, errors="replace") as f:
        errors = [l.rstrip("\n") for l in f if "***" in l]
    make_version = subprocess.run(["make", "--version"], capture_output=True,
                                  text=True).stdout.splitlines()[0]
    prov = {
        "source": a.source,
        "kernel_version": "%(VERSION)s.%(PATCHLEVEL)s.%(SUBLEVEL)s%(EXTRAVERSION)s" % ver,
        "arch": "x86_64",
        "config": a.config,
        "command": "make ARCH=x86_64 %s; make ARCH=x86_64 -n -k all" % a.config,
        "dryrun_errors": errors[:30],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "make_version": make_version,
        "script": "scripts/measure-kernel-build.sh (DRYRUN_TREE mode)",
        "script_commit": script_commit(),
    }
    profile = {
        "format": "memvirt-kernel-build-dryrun/1",
        "provenance": prov,
        "tree": tree_stats(snap["files"], snap["dirs"]),
        "full_build": full_build_of(load(a.dryrun), set(),
                                    "make -n -k all on the configured tree (a dry run: "
                                    "nothing built); each '  CC'/'  AS' object counted once"),
    }
    write_profile(profile, a.out)
    print("dry-run profile: %s (%d units)" % (a.out, profile["full_build"]["units"]))
    return 0


def cmd_pick(argv):
    """Objects of every EVERY-th unit of a profile (not modules, not generated sources)."""
    ap = argparse.ArgumentParser(prog="kbuild-profile.py pick")
    ap.add_argument("--profile", required=True)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--cpu-out", help="also write {object: cpu_s} of the picked units here")
    a = ap.parse_args(argv)
    units = [u for u in load(a.profile)["units"] if not u["module"] and not u["src_generated"]]
    print(" ".join(u["obj"] for u in units[::a.every]))
    if a.cpu_out:
        dump({u["obj"]: u["cpu_s"] for u in units[::a.every]}, a.cpu_out)
    return 0


def cmd_rss_split(argv):
    """How much of each sampled compile's maximum RSS was anonymous memory."""
    ap = argparse.ArgumentParser(prog="kbuild-profile.py rss-split")
    ap.add_argument("--tree", required=True)
    ap.add_argument("--logs", required=True)
    ap.add_argument("--provenance", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--sample-ms", type=float, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    tree = os.path.realpath(a.tree)
    units = []
    for r in load_records(a.logs):
        if r["tool"] != "gcc" or "sampled" not in r or r["rc"] != 0:
            continue
        kind, src = classify_gcc(r, tree)
        if kind != "unit":
            continue
        sm = r["sampled"]
        units.append({
            "src": src,
            "obj": norm(r["out"], r["cwd"], tree),
            "cpu_s": round(cpu(r), 4),
            "max_rss_kib": r["max_rss_kib"],
            "peak_rss_anon_kib": sm["rss_anon_kib"],
            "rss_file_kib_at_peak": sm["rss_file_kib"],
            "vm_rss_kib_at_peak": sm["vm_rss_kib"],
            "process": sm["process"],
            "samples": sm["samples"],
        })
    run = load(a.run)
    summary = {
        "units": len(units),
        "peak_rss_anon_kib": dist([u["peak_rss_anon_kib"] for u in units], 1),
        "rss_file_kib_at_peak": dist([u["rss_file_kib_at_peak"] for u in units], 1),
        "max_rss_kib": dist([u["max_rss_kib"] for u in units], 1),
        "anon_share_of_max_rss": dist([u["peak_rss_anon_kib"] / u["max_rss_kib"]
                                       for u in units if u["max_rss_kib"] > 0]),
        "max_rss_less_anon_kib": dist([u["max_rss_kib"] - u["peak_rss_anon_kib"] for u in units], 1),
        "wall_s": run["wall_s"],
        "loadavg_before": run["loadavg_before"],
    }
    prov = load(a.provenance)
    prov["sample_ms"] = a.sample_ms
    write_profile({"format": "memvirt-kernel-build-rss-split/1", "provenance": prov,
                   "summary": summary, "units": units}, a.out)
    print("rss split: %s (%d units)" % (a.out, len(units)))
    return 0


LIFE_BINS = 8  # the unit's life in eighths (the workload's default ramp_steps)


def reuse_unit(rows, fields):
    """One unit's reuse series summarised. Row i's share of anonymous memory referenced is its
    referenced anonymous-mapping pages over the anonymous-mapping pages it has then
    (`ref_share`). Pages a fault made in the interval are referenced too; `reref_share` counts
    only the pages that were there at the start of the interval: the referenced pages less the
    new ones (the larger of the growth and the minor faults, 4 KiB each: a lower bound), over
    the pages of the interval before. Means are over intervals; the pooled shares weight each
    interval by its pages. `reref` holds each interval's share (None for the first)."""
    col = {f: i for i, f in enumerate(fields)}
    ref_share, reref, per_row, life = [], [], [], [[] for _ in range(LIFE_BINS)]
    sum_ref = sum_anon = sum_reref = sum_prev = 0
    end = rows[-1][col["t_s"]] if rows else 0
    prev = None
    pooled_rows = []
    for r in rows:
        rss, ref = r[col["anon_map_rss_kib"]], r[col["anon_map_ref_kib"]]
        if rss > 0:
            ref_share.append(ref / rss)
            sum_ref += ref
            sum_anon += rss
        share = None
        if prev is not None and prev > 0:
            new = max(rss - prev, 4 * r[col["minflt"]], 0)
            old_ref = min(max(ref - new, 0), prev)
            share = old_ref / prev
            reref.append(share)
            sum_reref += old_ref
            sum_prev += prev
            mid = r[col["t_s"]] - r[col["wall_ms"]] / 2000.0
            b = min(int(mid / end * LIFE_BINS), LIFE_BINS - 1) if end > 0 else 0
            life[b].append(share)
            pooled_rows.append((old_ref, prev))
        else:
            pooled_rows.append(None)
        per_row.append(None if share is None else round(share, 4))
        prev = rss
    mean = lambda v: round(statistics.fmean(v), 4) if v else None
    cpu_ms = [r[col["cpu_ms"]] for r in rows]
    return {
        "intervals": len(rows),
        "cpu_ms_per_interval": mean(cpu_ms),
        "peak_anon_map_kib": max((r[col["anon_map_rss_kib"]] for r in rows), default=0),
        "peak_anon_kib": max((r[col["anon_kib"]] for r in rows), default=0),
        "ref_share": mean(ref_share),
        "reref_share": mean(reref),
        "ref_share_pooled": round(sum_ref / sum_anon, 4) if sum_anon else None,
        "reref_share_pooled": round(sum_reref / sum_prev, 4) if sum_prev else None,
        "reref_by_life": [mean(v) for v in life],
        "reref": per_row,
        "_pooled": (sum_ref, sum_anon, sum_reref, sum_prev),
        "_rows": pooled_rows,
    }


def reuse_derived(passes):
    """What the passes say together. A slice of 1/N of the CPU time is two slices of 1/2N:
    if a share a of the pages is referenced in each half (pooled reref_share of the 1/2N
    pass) and u in the whole (that of the 1/N pass), the halves share 2a - u, so of the pages
    referenced in one slice, (2a - u) / a are referenced again in the next: `persistence`
    (1 for a fixed working set, a for pages drawn afresh in every slice)."""
    pooled = {sm["slices"]: sm["reref_share_pooled"] for sm in passes
              if sm["mode"] == "cpu-slices" and sm["reref_share_pooled"]}
    out = []
    for n in sorted(pooled):
        if 2 * n in pooled:
            a, u = pooled[2 * n], pooled[n]
            out.append({"slices": 2 * n, "from_slices": n, "share_per_slice": a,
                        "share_per_double_slice": u, "persistence": round((2 * a - u) / a, 4)})
    return {"persistence": out}


def cmd_reuse(argv):
    """How much of each sampled compile's anonymous memory it referenced in each interval."""
    ap = argparse.ArgumentParser(prog="kbuild-profile.py reuse")
    ap.add_argument("--tree", required=True)
    ap.add_argument("--logs", required=True,
                    help="directory with a reuse-T folder per period, reuse-slicesN per slicing")
    ap.add_argument("--runs", required=True, help="directory with the run-reuse-*.json records")
    ap.add_argument("--periods", nargs="*", default=[], help="the periods T (ms)")
    ap.add_argument("--slices", nargs="*", default=[], help="the slicings N (CPU slices)")
    ap.add_argument("--provenance", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    tree = os.path.realpath(a.tree)
    units, passes, fields = [], [], None
    todo = [("wall", p, "reuse-" + p) for p in a.periods] + \
           [("cpu-slices", n, "reuse-slices" + n) for n in a.slices]
    for mode, value, name in todo:
        per = []
        for r in load_records(os.path.join(a.logs, name)):
            if r["tool"] != "gcc" or "reuse" not in r or r["rc"] != 0:
                continue
            kind, src = classify_gcc(r, tree)
            if kind != "unit":
                continue
            fields = r["reuse"]["fields"]
            u = {"pass": name, "src": src, "obj": norm(r["out"], r["cwd"], tree),
                 "cpu_s": round(cpu(r), 4), "max_rss_kib": r["max_rss_kib"]}
            if mode == "cpu-slices":
                u["slice_cpu_ms"] = r["reuse"]["slice_cpu_ms"]
            u.update(reuse_unit(r["reuse"]["rows"], fields))
            if mode == "cpu-slices":
                del u["reref_by_life"]  # the slices are the life
            u["series"] = r["reuse"]["rows"]
            per.append(u)
        pooled = [sum(u["_pooled"][i] for u in per) for i in range(4)]
        run = load(os.path.join(a.runs, "run-%s.json" % name))
        vals = lambda k: [u[k] for u in per if u.get(k) is not None]
        sm = {"pass": name, "mode": mode}
        if mode == "wall":
            sm["period_ms"] = float(value)
        else:
            sm["slices"] = int(value)
        sm.update({
            "units": len(per),
            "intervals": sum(u["intervals"] for u in per),
            "cpu_ms_per_interval": dist(vals("cpu_ms_per_interval"), 2),
            "ref_share": dist(vals("ref_share")),
            "reref_share": dist(vals("reref_share")),
            "ref_share_pooled": round(pooled[0] / pooled[1], 4) if pooled[1] else None,
            "reref_share_pooled": round(pooled[2] / pooled[3], 4) if pooled[3] else None,
        })
        if mode == "wall":
            sm["reref_by_life"] = [
                round(statistics.fmean(v), 4) if v else None
                for v in ([u["reref_by_life"][b] for u in per if u["reref_by_life"][b] is not None]
                          for b in range(LIFE_BINS))]
        else:
            # interval i is the unit's slice i + 1: each slice's mean and pooled share
            n = int(value)
            by = [[u["_rows"][i] for u in per if i < len(u["_rows"]) and u["_rows"][i]]
                  for i in range(n)]
            sm["reref_by_slice"] = [
                {"slice": i + 1, "units": len(v),
                 "mean": round(statistics.fmean(o / p for o, p in v), 4) if v else None,
                 "pooled": round(sum(o for o, _ in v) / sum(p for _, p in v), 4) if v else None}
                for i, v in enumerate(by)]
        sm.update({"wall_s": run["wall_s"], "loadavg_before": run["loadavg_before"],
                   "loadavg_after": run["loadavg_after"]})
        for u in per:
            del u["_pooled"], u["_rows"]
        passes.append(sm)
        units.extend(per)
    prov = load(a.provenance)
    prov["periods_ms"] = [float(p) for p in a.periods]
    prov["slices"] = [int(n) for n in a.slices]
    write_profile({"format": "memvirt-kernel-build-reuse/1", "provenance": prov,
                   "fields": fields, "summary": passes, "derived": reuse_derived(passes),
                   "units": units}, a.out)
    print("reuse: %s (%d unit runs)" % (a.out, len(units)))
    for sm in passes:
        print("  %s: %d units, %d intervals, reref_share mean %s, pooled %s; ref_share "
              "pooled %s" % (sm["pass"], sm["units"], sm["intervals"],
                             sm["reref_share"].get("mean"), sm["reref_share_pooled"],
                             sm["ref_share_pooled"]))
    return 0


def write_profile(profile, path):
    # one unit, link or header per line: readable, diffable, and still one JSON document
    with open(path, "w") as f:
        f.write("{\n")
        keys = list(profile)
        for k in keys:
            v = profile[k]
            last = k == keys[-1]
            if k in ("headers", "units", "links") or (k == "full_build"):
                if k == "full_build":
                    fb = dict(v)
                    ul = fb.pop("unit_list")
                    body = json.dumps(fb, indent=1)[:-2]
                    f.write(json.dumps(k) + ": " + body + ",\n \"unit_list\": [\n")
                    f.write(",\n".join("  " + json.dumps(x, separators=(",", ":")) for x in ul))
                    f.write("\n ]\n}" + ("" if last else ",") + "\n")
                    continue
                f.write(json.dumps(k) + ": [\n")
                f.write(",\n".join(" " + json.dumps(x, separators=(",", ":")) for x in v))
                f.write("\n]" + ("" if last else ",") + "\n")
            else:
                f.write(json.dumps(k) + ": " + json.dumps(v, indent=1) + ("" if last else ",") + "\n")
        f.write("}\n")
    with open(path) as f:
        json.load(f)  # the file must parse


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd, argv = sys.argv[1], sys.argv[2:]
    return {"run": cmd_run, "snapshot": cmd_snapshot, "dryrun": cmd_dryrun,
            "assemble": cmd_assemble, "dryrun-profile": cmd_dryrun_profile,
            "pick": cmd_pick, "rss-split": cmd_rss_split, "reuse": cmd_reuse}[cmd](argv)


if __name__ == "__main__":
    sys.exit(main())
