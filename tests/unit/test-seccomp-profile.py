#!/usr/bin/python3
"""sysctr's default seccomp profile (data/seccomp.json, OCI form) against
podman's default (Debian's /usr/share/containers/seccomp.json, Docker's form
with capability and architecture conditions), resolved the way podman
resolves it for a container with sysctr's default capabilities: for every
syscall that exists on x86_64, x86 or x32, both must allow it, or both deny
it with the same errno, or both restrict it by the same argument rules.
Prints TAP.

Usage: test-seccomp-profile.py OURS.json [PODMAN.json]
"""
import json
import sys

try:
    import seccomp  # python3-seccomp: names resolved by libseccomp itself
except ImportError:
    print("1..0 # SKIP python3-seccomp is not installed")
    sys.exit(0)

ours_path = sys.argv[1]
podman_path = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/containers/seccomp.json"
try:
    podman = json.load(open(podman_path))
except OSError:
    print("1..0 # SKIP %s is missing (package golang-github-containers-common)" % podman_path)
    sys.exit(0)
ours = json.load(open(ours_path))

# sysctr's default capability set (src/lib/render.c), in podman's names
CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}
# podman resolves "arches" conditions against the host's architecture (amd64)
# and applies the result to every sub-architecture of the filter
ARCHES = {"x86_64": ("amd64", seccomp.Arch.X86_64), "x86": ("amd64", seccomp.Arch.X86), "x32": ("amd64", seccomp.Arch.X32)}

n = 0
failed = 0


def tap(ok, what):
    global n, failed
    n += 1
    failed += not ok
    print(("ok" if ok else "not ok") + " %d - %s" % (n, what))


def exists(name, arch):
    try:
        return seccomp.resolve_syscall(arch, name) >= 0
    except Exception:
        return False


def verdicts(rules, default, podman_arch):
    """name -> frozenset of (action, errno, args) that apply; default for the rest"""
    out = {}
    for r in rules:
        inc, exc = r.get("includes") or {}, r.get("excludes") or {}
        if inc.get("caps") and not set(inc["caps"]) <= CAPS:
            continue
        if exc.get("caps") and set(exc["caps"]) & CAPS:
            continue
        if inc.get("arches") and podman_arch not in inc["arches"]:
            continue
        if exc.get("arches") and podman_arch in exc["arches"]:
            continue
        act = r["action"]
        err = r.get("errnoRet", 1 if act == "SCMP_ACT_ERRNO" else None)
        args = tuple(sorted((a["index"], a["value"], a.get("valueTwo", 0), a["op"]) for a in (r.get("args") or [])))
        for name in r["names"]:
            out.setdefault(name, set()).add((act, err, args))
    return out


def effective(v):
    """A conflict between an unconditional allow and an unconditional deny
    is a deny (podman's profile lists setns in both, for CAP_SYS_ADMIN)."""
    uncond = {x for x in v if not x[2]}
    if len(uncond) > 1:
        v = {x for x in v if x[2] or x[0] != "SCMP_ACT_ALLOW"}
    return frozenset(v)


for arch_name, (podman_arch, arch) in ARCHES.items():
    ours_v = verdicts(ours["syscalls"], ours["defaultAction"], podman_arch)
    podman_v = verdicts(podman["syscalls"], podman["defaultAction"], podman_arch)
    ours_default = (ours["defaultAction"], ours.get("defaultErrnoRet"), ())
    podman_default = (podman["defaultAction"], podman.get("defaultErrnoRet"), ())
    tap(ours_default == podman_default, "%s: unknown syscalls get %s errno %s" % (arch_name, *ours_default[:2]))
    names = {x for x in set(ours_v) | set(podman_v) if exists(x, arch)}
    differ = []
    for name in sorted(names):
        a = ours_v.get(name, {ours_default})
        # ours says one thing per syscall: an allow and a deny of the same
        # call would depend on libseccomp's order of rules
        a = frozenset(a) if len({x for x in a if not x[2]}) <= 1 else frozenset({("CONFLICT", None, ())})
        b = effective(podman_v.get(name, {podman_default}))
        if a != b:
            differ.append("%s: ours %s, podman %s" % (name, sorted(a), sorted(b)))
    tap(not differ, "%s: the same verdict as podman's default for all %d syscalls named" % (arch_name, len(names)))
    for d in differ[:20]:
        print("#   " + d)
    allowed = sum(1 for x in names if effective(ours_v.get(x, {ours_default})) == {("SCMP_ACT_ALLOW", None, ())})
    print("# %s: %d allowed outright, %d denied or conditional" % (arch_name, allowed, len(names) - allowed))

# the ones an attacker reaches for first
for name in ("keyctl", "add_key", "bpf", "kexec_load", "open_by_handle_at", "userfaultfd", "perf_event_open",
             "swapon", "init_module", "setns"):
    v = effective(verdicts(ours["syscalls"], ours["defaultAction"], "amd64").get(name, set()))
    allowed = ("SCMP_ACT_ALLOW", None, ()) in v
    # keyctl: podman allows it (the kernel keyring is namespaced by uid);
    # the others must be denied
    if name == "keyctl":
        tap(allowed, "keyctl allowed, as podman does")
    else:
        tap(not allowed, "%s is not allowed" % name)

print("1..%d" % n)
sys.exit(1 if failed else 0)
