#!/usr/bin/python3 -IS
"""Measuring shim for gcc, ld and ar during a kernel build (used by measure-kernel-build.sh).

Installed as symlinks named gcc, ld and ar in a directory put first on PATH, so the kernel's
Makefiles run it in place of the real tools without any change to CC, LD or AR. For each call it
runs the real tool (/usr/bin/NAME) as a child, waits for it with wait4 and writes one JSON record
to $KBW_LOG_DIR: the arguments, the working directory, the child's user and system CPU seconds and
maximum resident set size (wait4's rusage covers the child and every descendant it waited for, so
for gcc it is the driver, cc1 and as together), the child's I/O counters (the difference of this
process's /proc/self/io across the wait: Linux adds a reaped child's counters to its parent's),
and, for a compile, the dependency file gcc wrote (every file the preprocessor read) with sizes.

With KBW_SAMPLE_MS set, the shim also polls /proc/PID/status of the child and its descendants
every that many milliseconds while it runs and records the largest RssAnon of any one of them
(the compiler's anonymous memory, which the maximum RSS does not separate from its mapped
binary) with that process's RssFile and VmRSS at the same moment. Polling can miss a short
peak, so the sampled peak is a lower bound.

With KBW_REUSE_MS set, the shim finds the child's cc1 (a descendant whose name is cc1) and,
every that many milliseconds until it exits, writes 1 to /proc/PID/clear_refs (clearing the
accessed bit of every page it maps), sleeps the period, and reads /proc/PID/smaps (the pages
of each mapping that were referenced since), /proc/PID/stat (minor faults) and
/proc/PID/schedstat (CPU time): how much of the compiler's anonymous memory it uses again in
each interval. One row per interval goes into the record (columns in REUSE_FIELDS). With
KBW_REUSE_SLICES=N and KBW_REUSE_CPU (a JSON file {object: CPU seconds}, from the build
profile) instead, an interval ends when cc1 has run 1/N of the object's measured CPU time (polled
every 2 ms): the workload's ramp slices, whatever the machine's load.

Calls made from inside another wrapped call (collect2 running ld, for example) are passed
straight through, so each step is counted once. The shim's own start-up cost is recorded too,
so it can be subtracted from the whole build's counters.
"""
import json
import os
import resource
import sys
import time

REAL = {"gcc": "/usr/bin/gcc", "ld": "/usr/bin/ld", "ar": "/usr/bin/ar"}


def read_io():
    try:
        with open("/proc/self/io") as f:
            return {k: int(v) for k, v in (line.split(":") for line in f if ":" in line)}
    except OSError:
        return {}


def depfile_of(args):
    """The path gcc writes its -MD/-MMD dependency list to, if any."""
    out = None
    dep = None
    md = False
    it = iter(range(len(args)))
    for i in it:
        a = args[i]
        if a.startswith("-Wp,-MMD,") or a.startswith("-Wp,-MD,"):
            dep = a.split(",", 2)[2]
        elif a in ("-MD", "-MMD"):
            md = True
        elif a == "-MF" and i + 1 < len(args):
            dep = args[i + 1]
        elif a == "-o" and i + 1 < len(args):
            out = args[i + 1]
    if dep is None and md and out:
        dep = os.path.splitext(out)[0] + ".d"
    return dep


def parse_depfile(path):
    """Files listed on the right of the depfile's rule, in order, without duplicates."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    text = text.replace("\\\n", " ")
    files = []
    seen = set()
    for line in text.splitlines():
        if ":" not in line:
            continue
        # "target: dep dep ..." (paths here never contain ": ")
        _, _, rhs = line.partition(": ")
        if not rhs and line.endswith(":"):
            continue
        for tok in rhs.split():
            if tok not in seen:
                seen.add(tok)
                files.append(tok)
    return files


def out_arg(args):
    out = None
    for i, a in enumerate(args):
        if a == "-o" and i + 1 < len(args):
            out = args[i + 1]
    return out


def size_of(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def descendants(pid):
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def status_kib(pid):
    vals = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Name", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    vals[k] = v.strip() if k == "Name" else int(v.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return vals


# the columns of a reuse row (kbuild-profile.py reuse reads them by these names)
REUSE_FIELDS = ["t_s", "wall_ms", "cpu_ms", "minflt", "rss_kib", "anon_kib", "ref_kib",
                "anon_map_rss_kib", "anon_map_ref_kib", "anon_huge_kib"]


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def smaps_sums(pid):
    """Sums over the mappings of /proc/PID/smaps: Rss, Anonymous, Referenced and
    AnonHugePages of all, and Rss and Referenced of the anonymous mappings (no file: the
    heap, the stack, mmap'd anonymous memory), whose every page is anonymous. smaps_rollup
    has the first sums only, and its Referenced includes cc1's file-backed text. None if the
    process has no memory (gone, or a zombie)."""
    rss = anon = ref = huge = amap_rss = amap_ref = 0
    anon_map = False
    maps = 0
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            key, _, rest = line.partition(" ")
            if not key.endswith(":"):
                # a mapping's header: address perms offset dev inode [path]
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) > 5 else ""
                anon_map = path == "" or path in ("[heap]", "[stack]") or path.startswith("[anon")
                maps += 1
                continue
            if key == "Rss:":
                v = int(rest.split()[0])
                rss += v
                if anon_map:
                    amap_rss += v
            elif key == "Anonymous:":
                anon += int(rest.split()[0])
            elif key == "Referenced:":
                v = int(rest.split()[0])
                ref += v
                if anon_map:
                    amap_ref += v
            elif key == "AnonHugePages:":
                huge += int(rest.split()[0])
    if maps == 0:
        return None
    return rss, anon, ref, amap_rss, amap_ref, huge


def run_ns(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0])


def zombie(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rpartition(")")[2].split()[0] in ("Z", "X")


def minflt_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rpartition(")")[2].split()[7])


def wait_reuse(pid, period, slice_ns=0):
    """Waits for pid; meanwhile samples its cc1 every period seconds, or every slice_ns of its
    CPU time if that is set (see the docstring)."""
    out = {"process": "", "pid": 0, "rows": []}
    if slice_ns:
        out["slice_cpu_ms"] = round(slice_ns / 1e6, 3)
    else:
        out["period_ms"] = round(period * 1000, 3)
    target = None
    done = False
    t_start = 0.0
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid:
            return status, ru, out
        if done:
            time.sleep(0.005)
            continue
        if target is None:
            for p in descendants(pid)[1:]:
                if comm(p) == "cc1":
                    target = p
                    break
            if target is None:
                time.sleep(0.001)
                continue
            out.update(process="cc1", pid=target)
            t_start = time.monotonic()
        try:
            with open("/proc/%d/clear_refs" % target, "w") as f:
                f.write("1")
            t0 = time.monotonic()
            cpu0 = run_ns(target)
            flt0 = minflt_of(target)
            if slice_ns:
                while run_ns(target) - cpu0 < slice_ns:
                    if zombie(target):
                        raise OSError("exited")
                    time.sleep(0.002)
            else:
                time.sleep(period)
            t1 = time.monotonic()
            sums = smaps_sums(target)
            cpu1 = run_ns(target)
            flt1 = minflt_of(target)
        except (OSError, ValueError, IndexError):
            sums = None
        if sums is None:  # cc1 exited during the interval: that interval is not counted
            done = True
            continue
        rss, anon, ref, amap_rss, amap_ref, huge = sums
        out["rows"].append([round(t1 - t_start, 4), round((t1 - t0) * 1000, 2),
                            round((cpu1 - cpu0) / 1e6, 2), flt1 - flt0, rss, anon, ref,
                            amap_rss, amap_ref, huge])


def wait_sampling(pid, period):
    peak = {"rss_anon_kib": 0, "rss_file_kib": 0, "vm_rss_kib": 0, "process": "", "samples": 0}
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid:
            return status, ru, peak
        peak["samples"] += 1
        for p in descendants(pid):
            st = status_kib(p)
            if st and st.get("RssAnon", 0) > peak["rss_anon_kib"]:
                peak.update(rss_anon_kib=st["RssAnon"], rss_file_kib=st.get("RssFile", 0),
                            vm_rss_kib=st.get("VmRSS", 0), process=st.get("Name", ""))
        time.sleep(period)


def main():
    name = os.path.basename(sys.argv[0])
    real = REAL.get(name)
    if real is None:
        sys.stderr.write("kbuild-wrap: unknown tool name %r\n" % name)
        return 127
    args = sys.argv[1:]
    log_dir = os.environ.get("KBW_LOG_DIR")
    if not log_dir or os.environ.get("KBW_INSIDE"):
        os.execv(real, [real] + args)
    os.environ["KBW_INSIDE"] = "1"

    self_ru = resource.getrusage(resource.RUSAGE_SELF)
    io0 = read_io()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(real, [real] + args)
        finally:
            os._exit(127)
    sample_ms = float(os.environ.get("KBW_SAMPLE_MS") or 0)
    reuse_ms = float(os.environ.get("KBW_REUSE_MS") or 0)
    peak = None
    reuse_slices = int(os.environ.get("KBW_REUSE_SLICES") or 0)
    reuse = None
    slice_ns = 0
    if reuse_slices > 0 and name == "gcc":
        with open(os.environ["KBW_REUSE_CPU"]) as f:
            cpu_s = json.load(f).get(os.path.normpath(out_arg(args) or ""), 0)
        slice_ns = int(cpu_s * 1e9 / reuse_slices)
    if slice_ns > 0:
        status, ru, reuse = wait_reuse(pid, 0, slice_ns)
    elif reuse_ms > 0 and name == "gcc":
        status, ru, reuse = wait_reuse(pid, reuse_ms / 1000.0)
    elif sample_ms > 0:
        status, ru, peak = wait_sampling(pid, sample_ms / 1000.0)
    else:
        while True:
            try:
                _, status, ru = os.wait4(pid, 0)
                break
            except InterruptedError:
                continue
    wall = time.monotonic() - t0
    io1 = read_io()
    rc = os.waitstatus_to_exitcode(status)

    rec = {
        "tool": name,
        "args": args,
        "cwd": os.getcwd(),
        "phase": os.environ.get("KBW_PHASE", ""),
        "rc": rc,
        "start": time.time() - wall,
        "wall_s": round(wall, 6),
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "max_rss_kib": ru.ru_maxrss,
        "minflt": ru.ru_minflt,
        "majflt": ru.ru_majflt,
        "io": {k: io1.get(k, 0) - io0.get(k, 0) for k in io1},
        # the shim's own start-up before the child ran (to subtract from whole-build totals)
        "shim_cpu_s": self_ru.ru_utime + self_ru.ru_stime,
        "shim_io": io0,
    }
    if peak is not None:
        rec["sampled"] = peak
    if reuse is not None and reuse["rows"]:
        reuse["fields"] = REUSE_FIELDS
        rec["reuse"] = reuse
    if name == "gcc":
        dep = depfile_of(args)
        if dep:
            files = parse_depfile(dep)
            if files is not None:
                rec["deps"] = [[p, size_of(p)] for p in files]
    out = out_arg(args)
    if name == "ar" and len(args) >= 2:
        out = args[1]
    if out:
        rec["out"] = out
        rec["out_bytes"] = size_of(out)
    rec["in_sizes"] = {a: size_of(a) for a in args
                       if not a.startswith("-") and a != out and os.path.isfile(a)}

    data = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
    fn = os.path.join(log_dir, "%d-%d.json" % (os.getpid(), time.monotonic_ns()))
    fd = os.open(fn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
