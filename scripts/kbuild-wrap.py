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
    peak = None
    if sample_ms > 0:
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
    if name == "gcc":
        dep = depfile_of(args)
        if dep:
            files = parse_depfile(dep)
            if files is not None:
                rec["deps"] = [[p, size_of(p)] for p in files]
    out = None
    for i, a in enumerate(args):
        if a == "-o" and i + 1 < len(args):
            out = args[i + 1]
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
