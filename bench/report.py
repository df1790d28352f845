#!/usr/bin/env python3
"""bench/report.py RESULTS.TSV MACHINE.TXT  ->  markdown table on stdout.

RESULTS.TSV lines: KEY <tab> VALUE|NA <tab> MIN <tab> MAX <tab> N [<tab> WHY]
(times in seconds, sizes in bytes, PSS in KiB).  Goals are those of issue 7.
"""
import sys

res, why = {}, {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 2:
        continue
    if f[1] == "NA":
        why[f[0]] = f[5] if len(f) > 5 else ""
        continue
    g = lambda i: float(f[i]) if len(f) > i and f[i] not in ("",) else None
    res[f[0]] = (float(f[1]), g(2), g(3), int(float(f[4])) if len(f) > 4 and f[4] else None)

machine = open(sys.argv[2]).read().strip() if len(sys.argv) > 2 else ""


def v(k):
    return res[k][0] if k in res else None


def t(k):
    """time cell: median (min–max, n)"""
    if k not in res:
        return "not run" + (f" ({why[k]})" if k in why else "")
    m, lo, hi, n = res[k]
    ms = lambda x: f"{x*1000:.0f} ms" if x >= 0.1 else f"{x*1000:.1f} ms"
    s = ms(m)
    if lo is not None and hi is not None and (lo != hi or (n or 0) > 1):
        s += f" ({ms(lo)}–{ms(hi)}"
        s += f", n={n})" if n else ")"
    return s


def mib(k):
    if k not in res:
        return "—"
    b = res[k][0]
    return f"{b/1048576:.1f} MiB" if abs(b) >= 1048576 else f"{b/1024:.0f} KiB"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fr(r, fmt="{:.2f}×"):
    return "—" if r is None else fmt.format(r)


def verdict(ok):
    return "—" if ok is None else ("**met**" if ok else "**missed**")


rows = []  # (B, what, sysctr, peers, ratio, goal, verdict)
s = v("B1.sysctr")
r_sk = ratio(s, v("B1.skopeo_umoci"))
r_pm = ratio(s, v("B1.podman"))
r_fl = ratio(s, v("B1.floor"))
rows.append(("B1", f"cold pull, {res.get('input.layers', (0,))[0]:.0f} layers, "
             f"{mib('input.compressed')} gz / {mib('input.unpacked')} unpacked, {v('input.files') or 0:.0f} files",
             t("B1.sysctr"),
             f"skopeo+umoci {t('B1.skopeo_umoci')}<br>skopeo copy only {t('B1.skopeo')}<br>"
             f"podman pull {t('B1.podman')}<br>floor curl\\|tar -xz (sequential) {t('B1.floor')}<br>"
             f"floor, layers in parallel {t('B1.floor_par')}<br>ref: `ostree commit --tree=tar=` of the 5 layer tars {t('B1.ostree_commit_tar')}",
             f"{fr(r_sk)} skopeo+umoci<br>{fr(r_pm)} podman<br>{fr(r_fl)} floor<br>{fr(ratio(s, v('B1.floor_par')))} parallel floor",
             "≤ 0.5× skopeo+umoci; < 1× podman; ≤ 1.5× floor",
             " / ".join(verdict(x) for x in (
                 None if r_sk is None else r_sk <= 0.5,
                 None if r_pm is None else r_pm < 1,
                 None if r_fl is None else r_fl <= 1.5))))
s = v("B2.sysctr")
rq = v("B2.sysctr.requests")
rows.append(("B2", "warm re-pull (unchanged)",
             f"{t('B2.sysctr')}; {rq:.0f} requests in registry log (self-reported {v('B2.sysctr.self_reported_requests') or 0:.0f})"
             if s is not None and rq is not None else t("B2.sysctr"),
             f"skopeo copy {t('B2.skopeo')}, {v('B2.skopeo.requests') or 0:.0f} req<br>"
             f"podman pull {t('B2.podman')}, {v('B2.podman.requests') or 0:.0f} req",
             f"{fr(ratio(s, v('B2.skopeo')))} skopeo<br>{fr(ratio(s, v('B2.podman')))} podman",
             "≤ 50 ms; ≤ ping + 1 manifest request",
             " / ".join(verdict(x) for x in (None if s is None else s <= 0.05,
                                             None if rq is None else rq <= 2))))
da = v("B3.sysctr.disk_added")
rows.append(("B3", "pull v2 (one 10 MiB file changed in a 27 MiB layer)",
             f"{t('B3.sysctr')}<br>fetched {mib('B3.sysctr.bytes')}, disk added {mib('B3.sysctr.disk_added')}",
             f"skopeo copy {t('B3.skopeo')}: fetched {mib('B3.skopeo.bytes')}, disk added {mib('B3.skopeo.disk_added')} "
             f"(+ umoci unpack of v2: {mib('B3.umoci_unpack_v2.disk_added')})<br>"
             f"podman pull {t('B3.podman')}: fetched {mib('B3.podman.bytes')}, disk added {mib('B3.podman.disk_added')}",
             f"disk {fr(ratio(da, v('B3.skopeo.disk_added')))} skopeo, {fr(ratio(da, v('B3.podman.disk_added')))} podman",
             "disk added ≈ the changed file (≤ 12 MiB)",
             verdict(None if da is None else da <= 12 * 1048576)))
s = v("B4.sysctr")
n1 = v("B4.sysctr.files_nlink1_nonempty")
n1all = v("B4.sysctr.files_nlink1")
rows.append(("B4", "install (deploy + render + units) of the large image",
             f"{t('B4.sysctr')}<br>disk added {mib('B4.sysctr.disk_added')}; "
             f"{v('B4.sysctr.files') or 0:.0f} deployed files, {n1all or 0:.0f} with link count 1, "
             f"{n1 if n1 is not None else 0:.0f} of them non-empty (OSTree copies empty files instead of linking them)",
             f"umoci unpack {t('B4.umoci_unpack')}, disk {mib('B4.umoci_unpack.disk_added')}<br>"
             f"podman create {t('B4.podman_create')}, disk {mib('B4.podman_create.disk_added')}",
             f"{fr(ratio(s, v('B4.umoci_unpack')))} umoci unpack<br>{fr(ratio(s, v('B4.podman_create')))} podman create",
             "≤ 0.3 s; no file data copied (hardlinks)",
             " / ".join(verdict(x) for x in (None if s is None else s <= 0.3,
                                             None if n1 is None else n1 == 0))))
s, fl = v("B5.sysctr-shim"), v("B5.floor")
rows.append(("B5", "start-to-exit of a trivial payload (bench/shim-start.sh)",
             t("B5.sysctr-shim"),
             f"floor `unshare -mpiuf --mount-proc` {t('B5.floor')}<br>bwrap {t('B5.bwrap')}<br>"
             f"runc run {t('B5.runc')}<br>crun run {t('B5.crun')}",
             f"{fr(ratio(s, fl))} floor; {fr(ratio(s, v('B5.bwrap')))} bwrap; runc is {fr(ratio(v('B5.runc'), s))} the shim",
             "≤ 1.5× floor; faster than bwrap; runc ≥ 10× the shim",
             " / ".join(verdict(x) for x in (
                 None if s is None or fl is None else s / fl <= 1.5,
                 None if s is None or v("B5.bwrap") is None else s < v("B5.bwrap"),
                 None if s is None or v("B5.runc") is None else v("B5.runc") / s >= 10))))
s6, p6 = v("B6.sysctr"), v("B6.plain")
rows.append(("B6", "`systemctl start` of a Type=notify unit until active (nspawn systemd)",
             t("B6.sysctr"), f"same binary as a plain unit {t('B6.plain')}",
             fr(ratio(s6, p6)), "≤ 1.2× the plain unit",
             verdict(None if s6 is None or p6 is None else s6 / p6 <= 1.2)))
p7 = v("B7.shim_pss_kib")
rows.append(("B7", "PSS of the runtime's resident processes while the service runs",
             f"{p7:.0f} KiB (shim {v('B7.shim_main_pss_kib') or 0:.0f} + init {v('B7.shim_init_pss_kib') or 0:.0f})"
             if p7 is not None else "not run",
             f"runc run (foreground) {v('B7.runc_pss_kib') or 0:.0f} KiB" if v("B7.runc_pss_kib") else
             "runc: not run" + (f" ({why.get('B7.runc')})" if 'B7.runc' in why else ""),
             fr(ratio(v("B7.runc_pss_kib"), p7), "runc is {:.1f}× the shim"),
             "< 1 MiB", verdict(None if p7 is None else p7 < 1024)))
rb = v("B8.rollback")
lr, lo = v("B8.live_rollback"), v("B8.live_restart_only")
live_ok = None if lr is None or lo is None else lr <= lo + 0.05
rows.append(("B8", "update / rollback switch: offline `--root`; live in the nspawn systemd (rollback of running etcd = switch + restart)",
             f"rollback {t('B8.rollback')}<br>update --no-pull (deploy+switch) {t('B8.update_no_pull')}<br>"
             f"update incl. pull of the changed layer {t('B8.update_with_pull')}<br>live rollback {t('B8.live_rollback')}",
             f"live `systemctl restart` alone {t('B8.live_restart_only')}<br>"
             + "podman auto-update: not run" + (f" ({why['B8.podman_auto_update']})" if 'B8.podman_auto_update' in why else ""),
             fr(ratio(lr, lo)) if lr is not None and lo is not None else "—",
             "switch ≤ restart + 50 ms (offline: switch ≤ 50 ms)",
             " / ".join(verdict(x) for x in (None if rb is None else rb <= 0.05, live_ok))))
nmax = max([int(k.split(".")[1][1:]) for k in res if k.startswith("B9.n") and k.endswith(".disk_added")] or [0])
i1, i2, i3 = v("B9.install_1-1"), v("B9.install_2-10"), v(f"B9.install_11-{nmax}")
l50 = v(f"B9.n{nmax}.list")
b9 = []
for n in (1, 10, nmax):
    if f"B9.n{n}.disk_added" in res:
        b9.append(f"N={n}: disk {mib(f'B9.n{n}.disk_added')} ({res[f'B9.n{n}.disk_added'][0]/n/1048576:.2f} MiB each), list {t(f'B9.n{n}.list')}")
rows.append(("B9", f"N = 1, 10, {nmax} installs in one root",
             f"install #1 {t('B9.install_1-1')}<br>#2–10 {t('B9.install_2-10')}<br>#11–{nmax} {t(f'B9.install_11-{nmax}')}<br>" + "<br>".join(b9),
             "—", fr(ratio(i3, i2), "{:.2f}× (#11–N vs #2–10)"),
             f"flat per-container cost (≤ 1.25×); list < 100 ms at {nmax}",
             " / ".join(verdict(x) for x in (None if i3 is None or i2 is None else i3 / i2 <= 1.25,
                                             None if l50 is None else l50 < 0.1))))

a10, p10 = v("B10.sysctr.all_ready"), v("B10.plain.all_ready")
rows.append(("B10", "boot until 10 units are ready (etcd + 4 Type=notify + 2 Type=exec + 3 sockets), systemd's clock",
             f"all {t('B10.sysctr.all_ready')}<br>the 9 other than etcd {t('B10.sysctr.light_ready')}<br>"
             f"until is-system-running {t('B10.sysctr.wall')}",
             f"10 plain units: all {t('B10.plain.all_ready')}<br>the 9 other than etcd {t('B10.plain.light_ready')}<br>"
             f"until is-system-running {t('B10.plain.wall')}",
             f"{fr(ratio(a10, p10))} all<br>{fr(ratio(v('B10.sysctr.light_ready'), v('B10.plain.light_ready')))} the 9",
             "≤ 1.1× the plain units", verdict(None if a10 is None or p10 is None else a10 / p10 <= 1.1)))
p11 = v("B11.shim_pss_kib_per_container")
rows.append(("B11", "cost per container at boot: added start latency, resident shim memory",
             f"added start per container {t('B11.added_start_per_container')} (unit medians; "
             f"{t('B11.added_start_per_light_container')} without etcd); "
             f"boot: (all ready − plain) / 10 = {t('B11.added_boot_per_container')}<br>"
             + (f"shim PSS {p11:.0f} KiB per running container" if p11 is not None else "PSS not run"),
             "—", "—", "PSS < 1 MiB per container", verdict(None if p11 is None else p11 < 1024)))

print("| # | what | sysctr | side by side | ratio | goal | verdict |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(str(c) for c in r) + " |")
print()
print("Not measured here, and why:")
print()
for k, w in why.items():
    print(f"- `{k}`: {w}")
if not why:
    print("- (nothing)")
print()
print("Machine and run:")
print()
print("```")
print(machine)
if "total.run_s" in res:
    print(f"bench/run.sh wall time: {res['total.run_s'][0]:.0f} s")
print("```")
