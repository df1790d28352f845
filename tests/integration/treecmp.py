#!/usr/bin/env python3
"""treecmp.py [--allow-extra=P1,P2] REF DUT — compare two unpacked root filesystems file by file.

Compares, for every path: type, permission bits (incl. setuid/setgid/sticky),
uid, gid, sha256 of regular files, symlink targets, user.* xattrs, device
numbers.  Mtimes are ignored.  Hardlinks: every group of paths that share an
inode in REF must share one inode in DUT (DUT may link more: a bare OSTree
checkout hardlinks identical objects together).  Prints one line per
difference and exits 1 if there is any.  --allow-extra lists directories DUT
may have in addition (mount points a deployment adds: dev, proc, sys...).
"""
import hashlib
import os
import stat
import sys


def describe(root):
    out, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            d = {"type": kind, "mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                d["mode"] = None  # meaningless on Linux
                d["target"] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                d["sha256"] = h.hexdigest()
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                d["rdev"] = st.st_rdev
            try:
                names = os.listxattr(p, follow_symlinks=False)
            except OSError:
                names = []
            d["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False) for n in sorted(names) if n.startswith("user.")}
            out[rel] = d
    groups = [sorted(g) for g in inodes.values() if len(g) > 1]
    return out, groups


def main():
    args = sys.argv[1:]
    allow = set()
    if args and args[0].startswith("--allow-extra="):
        allow = set(args.pop(0).split("=", 1)[1].split(","))
    ref, dut = args[0], args[1]
    a, groups = describe(ref)
    b, _ = describe(dut)
    diffs = []
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            diffs.append(f"missing in {dut}: {rel}")
        elif rel not in a:
            if rel in allow and stat.S_ISDIR(b[rel]["type"]):
                continue
            diffs.append(f"extra in {dut}: {rel}")
        elif a[rel] != b[rel]:
            keys = [k for k in sorted(set(a[rel]) | set(b[rel])) if a[rel].get(k) != b[rel].get(k)]
            diffs.append(f"differs: {rel}: " + ", ".join(f"{k} {a[rel].get(k)!r} != {b[rel].get(k)!r}" for k in keys))
    for g in groups:
        inos = {os.lstat(os.path.join(dut, p)).st_ino for p in g if p in b}
        if len(inos) != 1:
            diffs.append("hardlink group split: " + " ".join(g))
    for d in diffs:
        print(d)
    print(f"compared {len(a)} paths, {len(groups)} hardlink group(s): {len(diffs)} difference(s)")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
