#!/bin/bash
# A fleet (issue: three-host etcd from system containers, rolling updates
# that never take down quorum). Three booted systemds, each in its own
# network namespace on a private bridge (tests/lib/fleet.sh), pull from a
# registry host on that bridge. Each installs etcd in the form of the
# atomic-system-containers catalogue with --set values for its name, peer
# URLs and the initial cluster; they form one cluster; a flannel-role
# service on each writes to it. Members survive a restart and a reboot.
# Then every host's `sysctr update --all` starts at the same moment with
# the update lock (etcd's v3 lock API, on the cluster itself): the members
# update one at a time (holders watched in etcd, never two), the cluster
# answers `endpoint health` with a quorum throughout while a client writes
# (no failed write outside a member's restart window); a v3 that never
# becomes ready is rolled back on the first host, whose halt record stops
# the others; --clear-halt; a host killed while it holds the lock releases
# it when its lease expires, and the others go on.
# shellcheck disable=SC2016  # single-quoted $ in eval'd text is meant literally
set -uo pipefail
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/lib/nspawn.sh"
. "$SYSCTR_SRCDIR/tests/lib/fleet.sh"
require_root
require_cmd systemd-nspawn nsenter ip skopeo umoci etcdctl jq python3 busybox

HOSTS=(h1 h2 h3)
declare -A IP=([reg]=10.213.0.2 [cl]=10.213.0.5 [h1]=10.213.0.11 [h2]=10.213.0.12 [h3]=10.213.0.13)
SC=${SYSCTR_PREFIX:-/usr/local}/bin/sysctr
ENDPOINTS=http://${IP[h1]}:2379,http://${IP[h2]}:2379,http://${IP[h3]}:2379
CLUSTER=h1=http://${IP[h1]}:2380,h2=http://${IP[h2]}:2380,h3=http://${IP[h3]}:2380

# --- images: etcd in the catalogue's form with a readiness check (etcd's
# own /health: a leader and a quorum read), v2 (a label differs), v3 (its
# check never passes); flannel-role v1 and a v2 that takes 15 s to be ready
HC='{"Test":["CMD-SHELL","wget -q -O- http://127.0.0.1:2379/health | grep -q true"],"Interval":1000000000,"Timeout":3000000000,"StartPeriod":5000000000,"Retries":3}'
HC_NEVER='{"Test":["CMD-SHELL","exit 1"],"Interval":1000000000,"Timeout":3000000000,"StartPeriod":5000000000,"Retries":3}'
build_atomic_etcd_upstream_image etcd v1 >"$TEST_TMPDIR/b.log" 2>&1 || { diag_file "$TEST_TMPDIR/b.log" 5; bail_out "etcd image"; }
image_healthcheck etcd v1 "$HC" || bail_out "etcd v1 health check"
skopeo --insecure-policy copy -q "oci:$(image_layout etcd):v1" "oci:$(image_layout etcd):v2" &&
	image_label etcd v2 org.sysctr.test.version=2 >/dev/null || bail_out "etcd v2"
skopeo --insecure-policy copy -q "oci:$(image_layout etcd):v2" "oci:$(image_layout etcd):v3" &&
	image_healthcheck etcd v3 "$HC_NEVER" || bail_out "etcd v3"
build_atomic_flannel_upstream_image flannel v1 >"$TEST_TMPDIR/b.log" 2>&1 || { diag_file "$TEST_TMPDIR/b.log" 5; bail_out "flannel image"; }
slow=$TEST_TMPDIR/slow-src
mkdir -p "$slow" && cp -a "$SYSCTR_SRCDIR/tests/images/atomic-flannel-upstream" "$slow/"
sed -i 's|^systemd-notify --ready|sleep 15; systemd-notify --ready|' "$slow/atomic-flannel-upstream/rootfs/usr/bin/flanneld-run.sh"
grep -q 'sleep 15; systemd-notify' "$slow/atomic-flannel-upstream/rootfs/usr/bin/flanneld-run.sh" || bail_out "slow flannel"
SYSCTR_TEST_IMAGES_SRC=$slow build_atomic_flannel_upstream_image flannel v2 >/dev/null 2>&1 || bail_out "flannel v2"

# --- the network, the registry host, a client, three hosts
FLEET_ETC_DIRS="systemd/system tmpfiles.d containers sysctr etcd sysconfig flanneld"
fleet_net_up || bail_out "fleet network"
fleet_registry_start reg "${IP[reg]}" || bail_out "registry host"
fleet_client_add cl "${IP[cl]}" || bail_out "client"
for h in "${HOSTS[@]}"; do
	fleet_host_add "$h" "${IP[$h]}" || bail_out "adding $h"
	fleet_host_boot "$h" || bail_out "booting $h"
done
for h in "${HOSTS[@]}"; do
	ok "$h: the machine's loopback is out of reach, only the test subnet is routed" fleet_check_isolated "$h"
done
for t in v1 v2 v3; do fleet_push "oci:$(image_layout etcd):$t" "etcd:$t" >/dev/null || bail_out "push etcd $t"; done
REF=$FLEET_REGISTRY/etcd:stable
FREF=$FLEET_REGISTRY/flannel:stable
fleet_push "oci:$(image_layout etcd):v1" etcd:stable >/dev/null || bail_out "push"
fleet_push "oci:$(image_layout flannel):v1" flannel:stable >/dev/null || bail_out "push"

ectl() { in_netns cl env ETCDCTL_API=3 etcdctl --endpoints="${ENDPOINTS//http:\/\//}" --dial-timeout=2s --command-timeout=3s "$@"; }
ectl_at() { local h=$1; shift; in_netns cl env ETCDCTL_API=3 etcdctl --endpoints="${IP[$h]}:2379" --dial-timeout=2s --command-timeout=3s "$@"; }
healthy_members() {
	local n
	n=$(ectl endpoint health -w json 2>/dev/null | jq '[.[] | select(.health==true)] | length' 2>/dev/null)
	echo "${n:-0}" # no answer from any endpoint: none healthy
}
digest_on() { on_host "$1" "$SC" list --json | jq -r ".[] | select(.name==\"$2\") | .digest"; }
mainpid_on() { on_host "$1" systemctl show -p MainPID --value "$2.service"; }
stamp() { while IFS= read -r l; do echo "$(now_ms) $l"; done; }
# on_all TAG CMD...: CMD on every host at the same moment; output stamped
# line by line into TAG.HOST, status into TAG.HOST.rc
on_all() {
	local tag=$1 h
	shift
	rm -f "$TEST_TMPDIR/go.$tag"
	for h in "${HOSTS[@]}"; do
		(
			while [[ ! -e $TEST_TMPDIR/go.$tag ]]; do sleep 0.01; done
			on_host "$h" "$@" 2>&1 | stamp >"$TEST_TMPDIR/$tag.$h"
			echo "${PIPESTATUS[0]}" >"$TEST_TMPDIR/$tag.$h.rc"
		) &
	done
	sleep 0.2
	touch "$TEST_TMPDIR/go.$tag"
}
wait_all() { # TAG TIMEOUT
	local h
	for h in "${HOSTS[@]}"; do wait_until "$2" test -e "$TEST_TMPDIR/$1.$h.rc" || echo "$h: no end" >&2; done
}
rc_of() { cat "$TEST_TMPDIR/$1.$2.rc" 2>/dev/null || echo none; }

# --- the cluster, from system containers (installed on the three hosts at once)
LOCKOPTS=(--update-lock="etcd:$ENDPOINTS" --update-lock-ttl=5)
installs=()
for h in "${HOSTS[@]}"; do
	on_host "$h" "$SC" install --system --now --privileged --tls-verify=false --name=etcd "${LOCKOPTS[@]}" \
		--set ETCD_NAME="$h" --set ETCD_INITIAL_CLUSTER="$CLUSTER" --set ETCD_INITIAL_CLUSTER_TOKEN="fleet-$TEST_RUN_ID" \
		--set ETCD_LISTEN_CLIENT_URLS="http://${IP[$h]}:2379,http://127.0.0.1:2379" \
		--set ETCD_ADVERTISE_CLIENT_URLS="http://${IP[$h]}:2379" \
		--set ETCD_LISTEN_PEER_URLS="http://${IP[$h]}:2380" --set ETCD_INITIAL_ADVERTISE_PEER_URLS="http://${IP[$h]}:2380" \
		--set AUTO_UPDATE=registry "$REF" >"$TEST_TMPDIR/install.$h" 2>&1 &
	installs+=($!)
done
wait "${installs[@]}" # (a bare wait would wait for the fleet's own processes too)
for h in "${HOSTS[@]}"; do
	assert_eq "$(on_host "$h" systemctl is-active etcd.service)" active "$h: etcd installed as a system container and active"
done
wait_until 60 eval '[[ $(healthy_members) == 3 ]]'
assert_eq "$(ectl member list -w json | jq '.members | length')" 3 "one cluster of three members"
assert_eq "$(healthy_members)" 3 "  ... every member healthy"
assert_eq "$(ectl member list -w json | jq -r '[.members[].name] | sort | join(",")')" h1,h2,h3 "  ... named by --set ETCD_NAME"
ok "a write through one member" ectl_at h1 put /fleet/hello world
assert_eq "$(ectl_at h3 get --print-value-only /fleet/hello)" world "  ... is read through another"

for h in "${HOSTS[@]}"; do
	on_host "$h" "$SC" install --system --now --privileged --tls-verify=false --name=flannel \
		--update-lock="etcd:$ENDPOINTS" --update-lock-ttl=5 --set AUTO_UPDATE=registry \
		--set FLANNELD_ETCD_PREFIX="/fleet/flannel/$h" "$FREF" >"$TEST_TMPDIR/flannel.$h" 2>&1 ||
		{ fail "$h: flannel installed"; diag_file "$TEST_TMPDIR/flannel.$h" 5; }
done
assert_eq "$(ectl get --prefix /fleet/flannel/ --keys-only | grep -c .)" 3 "a flannel-role service on each host wrote to the cluster"

# --- members survive a restart and a reboot
on_host h2 systemctl restart etcd.service
wait_until 30 eval '[[ $(healthy_members) == 3 ]]'
assert_eq "$(healthy_members)" 3 "h2: systemctl restart etcd: the member is back"
fleet_host_poweroff h3
ok "h3 down: a write with two members" ectl put /fleet/while-h3-down yes
fleet_host_boot h3 || bail_out "booting h3 again"
wait_until 60 eval '[[ $(healthy_members) == 3 ]]'
wait_until 30 eval '[[ $(on_host h3 systemctl is-active etcd.service flannel.service | sort -u) == active ]]'
assert_eq "$(on_host h3 systemctl is-active etcd.service flannel.service | sort -u)" active "h3 rebooted: etcd and flannel start at boot"
assert_eq "$(healthy_members)" 3 "  ... the member rejoined"
assert_eq "$(ectl_at h3 get --print-value-only /fleet/while-h3-down)" yes "  ... and caught up (a write made while it was down)"

# --- a rolling update: v2, every host's update --all at the same moment
fleet_push "oci:$(image_layout etcd):v2" etcd:stable >/dev/null || bail_out "push v2"
v1=$(digest_on h1 etcd)
declare -A pid_v1
for h in "${HOSTS[@]}"; do pid_v1[$h]=$(mainpid_on "$h" etcd); done
# the holders, as etcd saw them: etcd's history of the holder records from
# the revision after now, replayed by a watch once the update is done (a
# watch running all along missed a holder in a CI run and in a local one,
# most likely when the member it was connected to restarted)
rev=$(ectl get --prefix /sysctr/update/ -w json | jq -r .header.revision)
[[ "$rev" =~ ^[0-9]+$ ]] || bail_out "etcd's revision before the rolling update ($rev)"
rm -f "$TEST_TMPDIR/stop"
( # a client writes all along
	i=0
	while [[ ! -e $TEST_TMPDIR/stop ]]; do
		i=$((i + 1)) t=$(now_ms)
		if ectl put "/fleet/w/$i" "$i" >/dev/null 2>&1; then echo "$t ok"; else echo "$t fail"; fi
		sleep 0.1
	done >"$TEST_TMPDIR/writes"
) &
writer=$!
( # endpoint health, twice a second
	while [[ ! -e $TEST_TMPDIR/stop ]]; do echo "$(now_ms) $(healthy_members)"; sleep 0.5; done >"$TEST_TMPDIR/health"
) &
sampler=$!
sleep 1
t_go=$(now_ms)
on_all upd "$SC" update --all
wait_all upd 240
t_done=$(now_ms)
sleep 1
touch "$TEST_TMPDIR/stop"
wait "$writer" "$sampler"
for h in "${HOSTS[@]}"; do
	assert_eq "$(rc_of upd "$h")" 0 "$h: update --all succeeded"
	assert_ne "$(digest_on "$h" etcd)" "$v1" "  ... etcd runs v2"
	assert_ne "$(mainpid_on "$h" etcd)" "${pid_v1[$h]}" "  ... in a restarted service"
	grep -q "took the update lock etcd" "$TEST_TMPDIR/upd.$h" && grep -q "released the update lock etcd" "$TEST_TMPDIR/upd.$h" &&
		pass "  ... it took the lock and released it" || { fail "  ... it took the lock and released it"; diag_file "$TEST_TMPDIR/upd.$h" 20; }
done
# never two holders: the events since $rev, in etcd's order
in_netns cl timeout 5 env ETCDCTL_API=3 etcdctl --endpoints="${ENDPOINTS//http:\/\//}" watch --prefix \
	/sysctr/update/ --rev=$((rev + 1)) -w json >"$TEST_TMPDIR/watch.json" 2>"$TEST_TMPDIR/watch.err"
holders=$(python3 - "$TEST_TMPDIR/watch.json" <<'PY'
import base64, json, sys
live, seq, most = set(), [], 0
dec = json.JSONDecoder()
text = open(sys.argv[1]).read()
i = 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    obj, i = dec.raw_decode(text, i)
    for ev in obj.get("Events") or []:
        key = base64.b64decode(ev["kv"]["key"]).decode()
        if "/holder/" not in key or not key.startswith("/sysctr/update/etcd/"): continue
        host = key.rsplit("/", 1)[1]
        if ev.get("type") == 1: live.discard(host)
        else: live.add(host); seq.append(host)
        most = max(most, len(live))
print(most, " ".join(seq))
PY
)
assert_eq "${holders%% *}" 1 "the lock's holders, as a watch in etcd saw them: never two at once (${holders#* })"
assert_eq "$(tr ' ' '\n' <<<"${holders#* }" | sort | tr '\n' ' ')" "h1 h2 h3 " "  ... each host once"
# the same from the hosts' own records: the etcd revisions they held it between
revs=$(for h in "${HOSTS[@]}"; do on_host "$h" "$SC" info --json etcd | jq -r '.last_update.lock | "\(.acquired_revision) \(.released_revision)"'; done | sort -n)
overlap=$(awk 'NR > 1 && $1 < prev { print "overlap" } { prev = $2 }' <<<"$revs")
assert_eq "$overlap" "" "  ... the revisions each host held it between do not overlap ($(tr '\n' ';' <<<"$revs"))"
min_healthy=$(awk '{ print $2 }' "$TEST_TMPDIR/health" | sort -n | head -n1)
samples=$(wc -l <"$TEST_TMPDIR/health")
((min_healthy >= 2)) && pass "endpoint health: a quorum in every one of $samples samples (fewest healthy: $min_healthy of 3)" ||
	{ fail "endpoint health: a quorum throughout (fewest healthy: $min_healthy)"; diag_file "$TEST_TMPDIR/health" 40; }
# at most one member down at a time, by systemd's clock: from the moment
# etcd.service left "active" (the restart began) to the moment that host's
# update passed its readiness gate ("released"); these windows of the three
# hosts must not overlap (sampling alone can miss a short restart)
down=$(for h in "${HOSTS[@]}"; do
	exit_ts=$(on_host "$h" systemctl show -p ActiveExitTimestamp --timestamp=us+utc --value etcd.service)
	# ready: the gate passed ("released"; without a lock, "Updated etcd")
	up=$(awk '/released the update lock etcd|Updated etcd/ { print $1; exit }' "$TEST_TMPDIR/upd.$h")
	echo "$(date -d "$exit_ts" +%s%3N) ${up:-0} $h"
done | sort -n)
overlap=$(awk 'NR > 1 && $1 < prev { print "overlap" } { prev = $2 }' <<<"$down")
assert_eq "$overlap" "" "at most one member down at a time: restart-to-ready windows by systemd's clock do not overlap ($(tr '\n' ';' <<<"$down"))"
# each host's restart window: from its "took the update lock" to its "released"
windows=$(for h in "${HOSTS[@]}"; do
	awk '/took the update lock etcd/ { a = $1 } /released the update lock etcd/ { print a, $1 }' "$TEST_TMPDIR/upd.$h"
done)
writes=$(wc -l <"$TEST_TMPDIR/writes")
failed=$(grep -c ' fail$' "$TEST_TMPDIR/writes")
outside=$(awk 'NR == FNR { a[NR] = $1; b[NR] = $2; n = NR; next }
	$2 == "fail" { inside = 0; for (i = 1; i <= n; i++) if ($1 >= a[i] && $1 <= b[i]) inside = 1; if (!inside) print }' \
	<(echo "$windows") "$TEST_TMPDIR/writes" | wc -l)
assert_eq "$outside" 0 "a client wrote all along: $writes writes, $failed failed, none outside a member's restart window"
((writes >= 20)) && pass "  ... ($writes writes: enough to mean something)" || fail "  ... enough writes ($writes)"
assert_eq "$(healthy_members)" 3 "after the rolling update: three healthy members"
diag "TIME rolling update of 3 members: $((t_done - t_go)) ms from the common start to the last host done"
for h in "${HOSTS[@]}"; do
	diag "TIME $h: $(on_host "$h" "$SC" info --json etcd | jq -r '.last_update.lock | "waited \(.waited_ms) ms, held \(.held_ms) ms (revisions \(.acquired_revision)-\(.released_revision))"')"
done
v2=$(digest_on h1 etcd)

# --- v3 never becomes ready: rolled back on the first host, the others halted
fleet_push "oci:$(image_layout etcd):v3" etcd:stable >/dev/null || bail_out "push v3"
declare -A pid_before
for h in "${HOSTS[@]}"; do pid_before[$h]=$(mainpid_on "$h" etcd); done
on_all bad "$SC" update --all
wait_all bad 240
results=$(for h in "${HOSTS[@]}"; do on_host "$h" "$SC" info --json etcd | jq -r .last_update.result; done | sort | tr '\n' ',')
assert_eq "$results" "halted,halted,rolled back," "v3: rolled back on one host, halted on the two others"
first=""
for h in "${HOSTS[@]}"; do
	assert_ne "$(rc_of bad "$h")" 0 "$h: update --all reports the failure"
	assert_eq "$(digest_on "$h" etcd)" "$v2" "  ... v2 runs"
	r=$(on_host "$h" "$SC" info --json etcd | jq -r .last_update.result)
	if [[ $r == halted ]]; then
		assert_eq "$(mainpid_on "$h" etcd)" "${pid_before[$h]}" "  ... halted: its etcd was not restarted"
		assert_contains "$(cat "$TEST_TMPDIR/bad.$h")" "halted by a failed update elsewhere" "  ... update --all counts it as halted"
	else
		first=$h
	fi
done
halt=$(ectl get --print-value-only /sysctr/update/etcd/halt)
assert_eq "$(jq -r .host <<<"$halt")" "$first" "the halt record names the host that failed ($first)"
assert_match "$(jq -r .reason <<<"$halt")" "health|unhealthy" "  ... and why ($(jq -r .reason <<<"$halt"))"
wait_until 30 eval '[[ $(healthy_members) == 3 ]]'
assert_eq "$(healthy_members)" 3 "  ... three healthy members"
assert_contains "$(on_host h2 "$SC" info etcd)" "Last update: " "info shows the last attempt"
out=$(on_host h2 "$SC" update --clear-halt etcd 2>&1)
assert_contains "$out" "cleared the halt of the update lock etcd" "update --clear-halt on another host ($out)"
fleet_push "oci:$(image_layout etcd):v2" etcd:stable >/dev/null || bail_out "push v2 again"

# --- a host killed while it holds the lock: its lease expires, the others go on
fleet_push "oci:$(image_layout flannel):v2" flannel:stable >/dev/null || bail_out "push flannel v2"
fv1=$(digest_on h1 flannel)
on_all fl "$SC" update --all
wait_until 60 eval '[[ -n $(ectl get --prefix /sysctr/update/flannel/holder/ --keys-only) ]]' || fail "a host took the flannel lock"
victim=$(ectl get --prefix /sysctr/update/flannel/holder/ --keys-only | grep . | head -n1)
victim=${victim##*/}
fleet_host_kill "$victim"
t_kill=$(now_ms)
wait_until 30 eval '[[ -n $(ectl get --prefix /sysctr/update/flannel/holder/ --keys-only) && $(ectl get --prefix /sysctr/update/flannel/holder/ --keys-only | grep . | head -n1) != */$victim ]]'
next=$(( $(now_ms) - t_kill ))
((next >= 2500 && next <= 15000)) && pass "$victim killed while it held the lock: another host took it $next ms later (lease 5 s)" ||
	{ fail "another host took the lock when the lease expired ($next ms after the kill, lease 5 s)"
	  for h in "${HOSTS[@]}"; do diag "$h:"; diag_file "$TEST_TMPDIR/fl.$h" 30; done
	  diag "halt: $(ectl get --prefix /sysctr/update/flannel/ 2>&1)"; }
for h in "${HOSTS[@]}"; do
	[[ $h == "$victim" ]] && continue
	wait_until 120 test -e "$TEST_TMPDIR/fl.$h.rc"
	assert_eq "$(rc_of fl "$h")" 0 "$h: its update --all went on"
	assert_ne "$(digest_on "$h" flannel)" "$fv1" "  ... flannel v2 runs"
done
fleet_host_boot "$victim" || bail_out "booting $victim again"
wait_until 60 eval '[[ $(healthy_members) == 3 ]]'
assert_eq "$(healthy_members)" 3 "$victim booted again: its member rejoined"
out=$(on_host "$victim" "$SC" update --all 2>&1); rc=$?
assert_eq "$rc" 0 "$victim: update --all finishes the job ($(tail -n1 <<<"$out"))"
assert_ne "$(digest_on "$victim" flannel)" "$fv1" "  ... flannel v2 runs there too"
wait_until 30 eval '[[ $(on_host "$victim" systemctl is-active flannel.service) == active ]]'
assert_eq "$(on_host "$victim" systemctl is-active flannel.service)" active "  ... and is active"

done_testing
