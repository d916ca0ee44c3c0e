#!/usr/bin/env python3
"""Measures the guest kernel model's page cache costs on this machine's own kernel.

CPU time (process_time) per 4 KiB page of:
  read      read(2) of a cached file in 128 KiB calls (find_get_page + copy_to_user)
  overwrite write(2) over cached pages in 128 KiB calls (the pages become dirty)
  drop      posix_fadvise(DONTNEED) of clean cached pages (invalidate_mapping_pages: the
            page leaves the page cache and is freed, the work reclaim does per clean page)
Usage: scripts/measure-page-cache.py [--mib N] [--dir DIR]
"""
import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--dir", default="/tmp")
    a = ap.parse_args()
    size = a.mib << 20
    path = os.path.join(a.dir, f"memvirt-page-cache-{os.getpid()}.bin")
    chunk = 128 << 10
    pages = size / 4096
    try:
        with open(path, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(a.mib):
                f.write(block)
        buf = bytearray(chunk)
        fd = os.open(path, os.O_RDWR)
        for _ in range(3):
            os.lseek(fd, 0, 0)
            t = time.process_time()
            while os.readv(fd, [buf]):
                pass
            print(f"read      {(time.process_time() - t) * 1e9 / pages:7.0f} ns/page")
        zeros = bytes(chunk)
        for _ in range(3):
            os.lseek(fd, 0, 0)
            t = time.process_time()
            for _ in range(size // chunk):
                os.write(fd, zeros)
            print(f"overwrite {(time.process_time() - t) * 1e9 / pages:7.0f} ns/page")
        os.fsync(fd)
        # Once: a second drop would meet pages the re-read still has locked, which
        # invalidate_mapping_pages skips.
        for _ in range(1):
            os.lseek(fd, 0, 0)
            while os.readv(fd, [buf]):
                pass
            t = time.process_time()
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            print(f"drop      {(time.process_time() - t) * 1e9 / pages:7.0f} ns/page")
        os.close(fd)
    finally:
        if os.path.exists(path):
            os.unlink(path)


if __name__ == "__main__":
    main()
