#!/bin/bash
# The update lock on one host, in a booted systemd, against a real etcd
# (Debian's etcd-server, a one-member cluster on loopback): options refused
# at install; an update waits while another holder (etcdctl lock) has the
# lock and restarts nothing meanwhile; the holder record and the lock are
# gone after it, and the host's other sysctr commands are not held up
# meanwhile (a rollback meanwhile makes the update do nothing); a failed
# update is rolled back and leaves a halt record that refuses the next
# update until --clear-halt; a sysctr killed while it
# holds the lock releases it by lease expiry; an etcd that does not answer
# fails the update and restarts nothing; two at a time (--update-lock-max);
# an etcd that wants TLS client certificates; one with users and roles
# (authentication on); --update-lock=none; info and
# list show the lock and the last attempt. The multi-host case is fleet.sh.
set -uo pipefail
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/lib/nspawn.sh"
require_root
require_cmd etcdctl dpkg-deb jq

registry_start >/dev/null || bail_out "registry did not start"

# the lock's etcd: a one-member cluster on the machine's loopback (the
# booted systemd shares the network)
x=$TEST_TMPDIR/etcd-deb
mkdir -p "$x" && dpkg-deb -x "$(etcd_deb)" "$x" || bail_out "etcd-server .deb"
# etcd_run NAME SCHEME CLIENT_PORT PEER_PORT [ETCD ARGS...]   a one-member
#   etcd on loopback, stopped at the end; its pid in ETCD_PID
etcd_run() {
	local name=$1 scheme=$2 port=$3 peer=$4
	shift 4
	"$x/usr/bin/etcd" --name "$name" --data-dir "$TEST_TMPDIR/etcd-$name" "$@" \
		--listen-client-urls "$scheme://127.0.0.1:$port" --advertise-client-urls "$scheme://127.0.0.1:$port" \
		--listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "$name=http://127.0.0.1:$peer" >"$TEST_TMPDIR/etcd-$name.log" 2>&1 &
	ETCD_PID=$!
	cleanup_push "kill_wait $ETCD_PID 10"
	reaper_add "kill -TERM $ETCD_PID"
}
E=$(alloc_port) EP=$(alloc_port)
etcd_run lock http "$E" "$EP"
etcd_pid=$ETCD_PID
ectl() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$E" --dial-timeout=2s --command-timeout=5s "$@"; }
wait_until 30 ectl endpoint health >/dev/null 2>&1 || bail_out "etcd did not come up"

# app v1, v2 (one file differs), v3 (exits a second after it starts)
mkdir -p "$TEST_TMPDIR/app"
build_busybox_image app v1 "" --config.cmd=-c --config.cmd='echo up; exec sleep 1000000' >/dev/null 2>&1 ||
	bail_out "building app v1"
REF=$REGISTRY_ADDR/app:stable
push() { skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$(image_layout "$1"):$2" "docker://$REF"; }
echo 2 >"$TEST_TMPDIR/app/version"
build_busybox_image app v2 "$TEST_TMPDIR/app" --config.cmd=-c --config.cmd='echo up; exec sleep 1000000' \
	>/dev/null 2>&1 || bail_out "building app v2"
build_busybox_image app v3 "" --config.cmd=-c --config.cmd='sleep 1; exit 3' >/dev/null 2>&1 ||
	bail_out "building app v3"
echo 4 >"$TEST_TMPDIR/app/version"
build_busybox_image app v4 "$TEST_TMPDIR/app" --config.cmd=-c --config.cmd='echo up; exec sleep 1000000' \
	>/dev/null 2>&1 || bail_out "building app v4"
push app v1 || bail_out "pushing v1"

nspawn_boot >/dev/null || bail_out "booting systemd"
LOCK="etcd:http://127.0.0.1:$E"
SYSCTR_IN=${SYSCTR_BIN:-${SYSCTR_PREFIX:-/usr/local}/bin/sysctr} # sysctr as in_sysctr runs it
mainpid() { in_systemctl show -p MainPID --value app.service; }
digest() { in_sysctr list --json | jq -r '.[] | select(.name=="app") | .digest'; }

# --- refused at install: one line each, nothing installed
for bad in "--update-lock=consul:http://127.0.0.1:$E" "--update-lock=etcd:ftp://127.0.0.1:$E" \
	"--update-lock=etcd:http://user:pw@127.0.0.1:$E" "--update-lock=etcd:http://127.0.0.1:$E/v3" \
	"--update-lock-max=0" "--update-lock=$LOCK --update-lock-ttl=2" "--update-lock=$LOCK --update-lock-name=a/b" \
	"--update-lock=$LOCK --set=UPDATE_LOCK_NAME=../x" "--update-lock-name=x"; do
	# shellcheck disable=SC2086 # two options in one case on purpose
	out=$(in_sysctr install --system --tls-verify=false --name=app $bad "$REF" 2>&1); rc=$?
	if ((rc != 0)) && [[ $(wc -l <<<"$out") == 1 ]] && ! in_systemd test -e /var/lib/sysctr/containers/app; then
		pass "install $bad: refused in one line ($out)"
	else
		fail "install $bad: refused in one line, nothing installed (rc $rc: $out)"
	fi
done

ok "install with --update-lock (lease 5 s)" in_sysctr install --system --now --tls-verify=false --name=app \
	--update-lock="$LOCK" --update-lock-ttl=5 "$REF"
info=$(in_sysctr info app)
assert_contains "$info" "Update lock: etcd http://127.0.0.1:$E; lock app, 1 host at a time, lease 5 s" \
	"info shows the lock (its name defaults to the container's)"
assert_contains "$info" "Last update: none recorded" "info: no update yet"
assert_eq "$(in_sysctr list --json | jq -r '.[0].update_lock')" app "list --json names the lock"

# --- another holder has the lock: the update waits and restarts nothing
push app v2 || bail_out "pushing v2"
pid1=$(mainpid)
# etcdctl lock holds the lock until it is killed (a mutex on the same
# name: the same keys as etcd's lock API)
ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$E" lock /sysctr/update/app/lock/0 >"$TEST_TMPDIR/hold.out" 2>&1 &
holder_pid=$!
cleanup_push "kill $holder_pid 2>/dev/null || :"
wait_until 10 eval '[[ -n "$(ectl get --prefix /sysctr/update/app/lock/0 --keys-only)" ]]' ||
	fail "etcdctl lock took the lock"
in_sysctr update app >"$TEST_TMPDIR/upd.out" 2>&1 &
upd=$!
wait_until 15 grep -q "waiting for the update lock app" "$TEST_TMPDIR/upd.out" &&
	pass "update waits for the lock another holder has ($(grep waiting "$TEST_TMPDIR/upd.out"))" ||
	{ fail "update waits for the lock"; diag_file "$TEST_TMPDIR/upd.out"; }
sleep 3
assert_eq "$(mainpid)" "$pid1" "  ... and restarts nothing while it waits (3 s)"
pid_alive "$upd" && pass "  ... still waiting" || fail "  ... still waiting"
# the host's state lock is let go meanwhile: other commands go on
out=$(in_systemd timeout -k 5 20 "$SYSCTR_IN" install --system --tls-verify=false --name=bystander "$REF" 2>&1); rc=$?
assert_eq "$rc" 0 "  ... meanwhile another sysctr command on the host runs (install, without waiting for it)"
assert_not_match "$out" "Waiting for another sysctr command" "  ... and did not wait for the state lock"
ok "  ... (and uninstall)" in_systemd timeout -k 5 20 "$SYSCTR_IN" uninstall bystander
kill "$holder_pid" 2>/dev/null
wait_until 60 eval '! pid_alive $upd' || { kill "$upd"; fail "the update finished within 60 s"; }
wait "$upd"; rc=$?
assert_eq "$rc" 0 "the update goes on once the holder lets go"
assert_contains "$(cat "$TEST_TMPDIR/upd.out")" "took the update lock app (slot 1 of 1" "  ... took the lock"
assert_contains "$(cat "$TEST_TMPDIR/upd.out")" "released the update lock app" "  ... released it after the gate"
assert_ne "$(mainpid)" "$pid1" "  ... restarted the service"
assert_eq "$(ectl get --prefix /sysctr/update/app/ --keys-only | grep -c .)" 0 "nothing left in etcd (lock, holder)"
last=$(in_sysctr info --json app | jq -c .last_update)
assert_eq "$(jq -r .result <<<"$last")" updated "the last attempt is recorded: updated"
(( $(jq .lock.released_revision <<<"$last") > $(jq .lock.acquired_revision <<<"$last") )) &&
	pass "  ... with the lock's etcd revisions ($(jq -c .lock <<<"$last"))" || fail "  ... lock revisions ($last)"
v2=$(digest)

# --- an admin's rollback while an update waits for the lock: the update,
# once it holds the lock, finds the container changed and does nothing
push app v4 || bail_out "pushing v4"
ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$E" lock /sysctr/update/app/lock/0 >"$TEST_TMPDIR/hold.out" 2>&1 &
holder_pid=$!
wait_until 10 eval '[[ -n "$(ectl get --prefix /sysctr/update/app/lock/0 --keys-only)" ]]' ||
	fail "etcdctl lock took the lock"
in_sysctr update app >"$TEST_TMPDIR/upd.out" 2>&1 &
upd=$!
wait_until 15 grep -q "waiting for the update lock app" "$TEST_TMPDIR/upd.out" || fail "the update waits"
ok "an admin's rollback runs while the update waits" in_systemd timeout -k 5 30 "$SYSCTR_IN" rollback app
v1=$(digest)
pid_rb=$(mainpid)
kill "$holder_pid" 2>/dev/null
wait_until 60 eval '! pid_alive $upd' || { kill "$upd"; fail "the update finished within 60 s"; }
wait "$upd"; rc=$?
assert_ne "$rc" 0 "  ... the waiting update then does nothing"
assert_contains "$(tail -n1 "$TEST_TMPDIR/upd.out")" "app changed while this update waited for the update lock" \
	"  ... saying why in one line ($(tail -n1 "$TEST_TMPDIR/upd.out"))"
assert_eq "$(digest)" "$v1" "  ... the rolled-back version runs"
assert_eq "$(mainpid)" "$pid_rb" "  ... not restarted again"
assert_eq "$(ectl get --prefix /sysctr/update/app/ --keys-only | grep -c .)" 0 "  ... and the lock is free"
ok "rollback to v2 again" in_sysctr rollback app
assert_eq "$(digest)" "$v2" "  ... v2 runs"

# --- a failed update: rolled back, halt record, the next update refused
push app v3 || bail_out "pushing v3"
out=$(in_sysctr update app 2>&1); rc=$?
assert_ne "$rc" 0 "an update whose service does not stay up fails"
assert_contains "$out" "rolling back" "  ... and is rolled back"
assert_eq "$(digest)" "$v2" "  ... v2 runs again"
assert_eq "$(in_systemctl is-active app.service)" active "  ... and is active"
halt=$(ectl get --print-value-only /sysctr/update/app/halt)
assert_eq "$(jq -r .host <<<"$halt")" "$NSPAWN_NAME" "a halt record names the host"
assert_match "$(jq -r .version <<<"$halt")" "app:stable@sha256:" "  ... the version"
assert_match "$(jq -r .reason <<<"$halt")" "." "  ... and the reason ($(jq -r .reason <<<"$halt"))"
assert_eq "$(ectl get --prefix /sysctr/update/app/lock --keys-only | grep -c .)" 0 "  ... and the lock was released"
out=$(in_sysctr update app 2>&1); rc=$?
assert_ne "$rc" 0 "the next update is refused while the halt record exists"
assert_contains "$out" "updates of lock app are halted" "  ... saying so ($out)"
assert_eq "$(digest)" "$v2" "  ... v2 still runs"
assert_eq "$(in_sysctr info --json app | jq -r .last_update.result)" halted "  ... recorded as halted"
assert_contains "$(in_sysctr list)" "halted" "list shows the last attempt"
out=$(in_sysctr update --clear-halt app 2>&1)
assert_contains "$out" "cleared the halt of the update lock app" "update --clear-halt clears it ($out)"
assert_eq "$(ectl get /sysctr/update/app/halt --keys-only | grep -c .)" 0 "  ... the record is gone"
assert_contains "$(in_sysctr update --clear-halt app 2>&1)" "was not halted" "  ... a second time: nothing to clear"

# --- killed while holding the lock: the lease expires, the lock is free
push app v4 || bail_out "pushing v4"
IN_SYSTEMD_ENV=SYSCTR_SETTLE_MS SYSCTR_SETTLE_MS=20000 in_sysctr update app >"$TEST_TMPDIR/kill.out" 2>&1 &
wait_until 20 eval '[[ -n "$(ectl get --prefix /sysctr/update/app/holder/ --keys-only)" ]]' ||
	fail "the update took the lock"
in_systemd pkill -KILL -f "sysctr update app"
t_kill=$(now_ms)
wait_until 20 eval '[[ -z "$(ectl get --prefix /sysctr/update/app/ --keys-only)" ]]'
freed=$(( $(now_ms) - t_kill ))
((freed >= 2000 && freed <= 9000)) && pass "killed while holding it: the lock expired with its lease after $freed ms (ttl 5 s)" ||
	fail "the lock expired with its lease (after $freed ms, ttl 5 s)"
out=$(in_sysctr update app 2>&1); rc=$?
assert_eq "$rc" 0 "the next update completes what was interrupted ($(tail -n1 <<<"$out"))"
assert_ne "$(digest)" "$v2" "  ... v4 runs"

# --- etcd does not answer: the update fails in one line, restarts nothing
push app v2 || bail_out "pushing v2 again"
pid=$(mainpid)
kill -STOP "$etcd_pid"
out=$(in_sysctr update app 2>&1); rc=$?
kill -CONT "$etcd_pid"
assert_ne "$rc" 0 "etcd frozen: the update fails"
assert_match "$(tail -n1 <<<"$out")" "etcd /v3/kv/range: no endpoint answered" "  ... saying so in one line ($(tail -n1 <<<"$out"))"
assert_eq "$(mainpid)" "$pid" "  ... and restarts nothing"
assert_eq "$(in_sysctr info --json app | jq -r .last_update.result)" failed "  ... recorded as failed"
wait_until 20 ectl endpoint health >/dev/null 2>&1
push app v4 || bail_out "pushing v4 again" # the running version: nothing to update below

# --- the lock is switched off without a restart
pid=$(mainpid)
out=$(in_sysctr update --update-lock=none app 2>&1)
assert_contains "$out" "updates take no cluster lock now" "--update-lock=none ($out)"
assert_eq "$(mainpid)" "$pid" "  ... restarts nothing"
assert_contains "$(in_sysctr info app)" "Update lock: none" "  ... info says none"
out=$(in_sysctr update --update-lock="$LOCK" --update-lock-name=web --update-lock-max=2 app 2>&1)
assert_contains "$out" "lock web, 2 hosts at a time, lease 30 s" "set again with a name and two at a time ($out)"
assert_eq "$(mainpid)" "$pid" "  ... restarts nothing"
# --- two at a time: a slot taken by another holder leaves the other one
push app v2 || bail_out "pushing v2 again"
hold() { # SLOT: etcdctl holds the slot of lock "web" until killed; prints its pid
	ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$E" lock "/sysctr/update/web/lock/$1" >/dev/null 2>&1 &
	echo $!
}
h0=$(hold 0)
cleanup_push "kill $h0 2>/dev/null || :"
wait_until 10 eval '[[ -n "$(ectl get --prefix /sysctr/update/web/lock/0 --keys-only)" ]]'
out=$(in_sysctr update app 2>&1); rc=$?
assert_eq "$rc" 0 "max 2, one slot held elsewhere: the update goes on"
assert_contains "$out" "took the update lock web (slot 2 of 2" "  ... in the other slot"
assert_not_match "$out" "waiting" "  ... without waiting"
push app v4 || bail_out "pushing v4 again"
h1=$(hold 1)
cleanup_push "kill $h1 2>/dev/null || :"
wait_until 10 eval '[[ -n "$(ectl get --prefix /sysctr/update/web/lock/1 --keys-only)" ]]'
pid=$(mainpid)
in_sysctr update app >"$TEST_TMPDIR/two.out" 2>&1 &
upd=$!
wait_until 15 grep -q "waiting for the update lock web" "$TEST_TMPDIR/two.out" &&
	pass "both slots held elsewhere: the update waits" || fail "both slots held elsewhere: the update waits"
sleep 2
assert_eq "$(mainpid)" "$pid" "  ... restarting nothing"
kill "$h1"
wait_until 60 eval '! pid_alive $upd' || { kill "$upd"; fail "the update finished within 60 s"; }
wait "$upd"; rc=$?
assert_eq "$rc" 0 "  ... and goes on when one is let go"
assert_contains "$(cat "$TEST_TMPDIR/two.out")" "took the update lock web (slot 2 of 2" "  ... taking that one"
kill "$h0"

# --- an etcd that wants TLS client certificates (--client-cert-auth); its
# own certificate allows clientAuth too: etcd's JSON gateway dials etcd's
# gRPC server with it (without, the gateway answers 503 "connection closed")
tls=$TEST_TMPDIR/tls
mkdir -p "$tls"
mkcert() { # NAME USAGE: a P-256 key and a certificate for 127.0.0.1 signed by the test CA
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/$1.key" -out "$tls/$1.csr" \
		-subj "/CN=$1" 2>/dev/null &&
		openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
			-out "$tls/$1.pem" -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=%s\n' "$2") 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" \
	-days 2 -subj /CN=sysctr-test-ca 2>/dev/null && mkcert server serverAuth,clientAuth && mkcert client clientAuth ||
	bail_out "making TLS certificates"
T=$(alloc_port) TP=$(alloc_port)
etcd_run tls https "$T" "$TP" --cert-file "$tls/server.pem" --key-file "$tls/server.key" --client-cert-auth \
	--trusted-ca-file "$tls/ca.pem"
tctl() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$T" --cacert="$tls/ca.pem" --cert="$tls/client.pem" \
	--key="$tls/client.key" --dial-timeout=2s --command-timeout=5s "$@"; }
wait_until 30 tctl endpoint health >/dev/null 2>&1 || bail_out "TLS etcd did not come up"
out=$(in_sysctr update --update-lock="etcd:https://127.0.0.1:$T" --update-lock-cacert="$tls/ca.pem" app 2>&1)
assert_contains "$out" "etcd https://127.0.0.1:$T; lock web" "the lock moved to an https etcd, its CA given ($out)"
push app v2 || bail_out "pushing v2 again"
pid=$(mainpid)
out=$(in_sysctr update app 2>&1); rc=$?
assert_ne "$rc" 0 "without a client certificate the etcd refuses: the update fails"
assert_match "$(tail -n1 <<<"$out")" "no endpoint answered \(https://127.0.0.1:$T: " "  ... in one line ($(tail -n1 <<<"$out"))"
assert_eq "$(mainpid)" "$pid" "  ... restarting nothing"
out=$(in_sysctr update --update-lock-cert="$tls/client.pem" --update-lock-key="$tls/client.key" app 2>&1); rc=$?
assert_eq "$rc" 0 "with --update-lock-cert and --update-lock-key the update goes on"
assert_contains "$out" "took the update lock web" "  ... under the lock, over TLS"
assert_contains "$(in_sysctr info app)" "lease 30 s; TLS client certificate" "  ... info says a client certificate is used"
assert_eq "$(tctl get --prefix /sysctr/update/web/ --keys-only | grep -c .)" 0 "  ... nothing left in that etcd"
out=$(in_sysctr update --update-lock-key="$tls/client.key" --update-lock-cert="" app 2>&1); rc=$?
assert_ne "$rc" 0 "a key without a certificate is refused ($out)"
out=$(in_sysctr update --update-lock-cacert=relative.pem app 2>&1); rc=$?
assert_contains "$out" "an absolute path" "a relative path is refused ($out)"

# --- an etcd with authentication on (users, roles, a token that lives 1 s):
# the user's password is read from a file only root may read, at each update
A=$(alloc_port) AP=$(alloc_port)
etcd_run auth http "$A" "$AP" --auth-token-ttl=1
actl() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$A" --dial-timeout=2s --command-timeout=5s "$@"; }
wait_until 30 actl endpoint health >/dev/null 2>&1 || bail_out "auth etcd did not come up"
{ actl user add root:root-pw && actl user add upd:upd-pw && actl user add other:other-pw &&
	actl role add sysctr-update && actl role add elsewhere &&
	actl role grant-permission --prefix=true sysctr-update readwrite /sysctr/update/ &&
	actl role grant-permission --prefix=true elsewhere readwrite /elsewhere/ &&
	actl user grant-role upd sysctr-update && actl user grant-role other elsewhere &&
	actl auth enable; } >/dev/null 2>&1 || bail_out "users, roles and auth in etcd"
actl() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$A" --user=root:root-pw --dial-timeout=2s \
	--command-timeout=5s "$@"; }
pw=$TEST_TMPDIR/lock-pw
printf 'upd-pw\n' >"$pw" && chmod 644 "$pw"
out=$(in_sysctr update --update-lock="etcd:http://127.0.0.1:$A" --update-lock-cacert= --update-lock-cert= \
	--update-lock-key= app 2>&1)
assert_contains "$out" "etcd http://127.0.0.1:$A; lock web" "the lock moved to an etcd with authentication on ($out)"
push app v4 || bail_out "pushing v4 again"
pid=$(mainpid)
out=$(in_sysctr update app 2>&1); rc=$?
assert_ne "$rc" 0 "no user given: the update fails"
assert_match "$(tail -n1 <<<"$out")" "user name is empty \(this etcd has authentication on: give --update-lock-user" \
	"  ... in one line that says what to give ($(tail -n1 <<<"$out"))"
assert_eq "$(mainpid)" "$pid" "  ... restarting nothing"
for bad in "--update-lock-user=upd" "--update-lock-password-file=$pw" "--update-lock-user=a:b --update-lock-password-file=$pw" \
	"--update-lock-user=upd --update-lock-password-file=rel/pw"; do
	# shellcheck disable=SC2086 # two options in one case on purpose
	out=$(in_sysctr update $bad app 2>&1); rc=$?
	if ((rc != 0)) && [[ $(wc -l <<<"$out") == 1 ]] && [[ $(mainpid) == "$pid" ]]; then
		pass "update $bad: refused in one line ($out)"
	else fail "update $bad: refused in one line, restarting nothing (rc $rc: $out)"; fi
done
U=(--update-lock-user=upd "--update-lock-password-file=$pw")
out=$(in_sysctr update "${U[@]}" app 2>&1); rc=$?
assert_ne "$rc" 0 "a password file others can read: the update fails"
assert_contains "$(tail -n1 <<<"$out")" "is open to group or others (mode 0644): chmod 600 it" "  ... in one line ($(tail -n1 <<<"$out"))"
assert_eq "$(mainpid)" "$pid" "  ... restarting nothing"
chmod 600 "$pw" && printf 'wrong\n' >"$pw"
out=$(in_sysctr update "${U[@]}" app 2>&1); rc=$?
assert_ne "$rc" 0 "a wrong password: the update fails"
assert_match "$(tail -n1 <<<"$out")" "etcd user upd: .*authentication failed, invalid user ID or password" \
	"  ... in one line ($(tail -n1 <<<"$out"))"
assert_not_match "$out" "wrong" "  ... never showing the password"
assert_eq "$(mainpid)" "$pid" "  ... restarting nothing"
printf 'upd-pw\n' >"$pw"
out=$(in_sysctr --verbose update "${U[@]}" app 2>&1); rc=$?
assert_eq "$rc" 0 "user upd, its password in a mode-600 file: the update goes on"
assert_contains "$out" "took the update lock web" "  ... under the lock"
assert_contains "$out" "released the update lock web" "  ... and released it"
# etcd's tokens live 1 s here and the hold is the 3 s settle window: the
# release was refused the first token and authenticated again
assert_contains "$out" "authenticated as user upd again (etcd refused the token it gave before)" \
	"  ... authenticating again when etcd refused an expired token"
assert_not_match "$out" "upd-pw" "  ... never showing the password, even with --verbose"
assert_ne "$(mainpid)" "$pid" "  ... the service was restarted"
assert_eq "$(actl get --prefix /sysctr/update/web/ --keys-only | grep -c .)" 0 "  ... nothing left in that etcd"
assert_contains "$(in_sysctr info app)" "lease 30 s; etcd user upd" "  ... info names the etcd user (and no TLS now)"
assert_not_match "$(in_systemd cat /var/lib/sysctr/containers/app/info.json)" "upd-pw" \
	"  ... info.json keeps the password file's path, never the password"
# a user whose role does not cover /sysctr/update/
printf 'other-pw\n' >"$pw"
push app v2 || bail_out "pushing v2 again"
pid=$(mainpid)
out=$(in_sysctr update --update-lock-user=other app 2>&1); rc=$?
assert_ne "$rc" 0 "a user without a role on /sysctr/update/: the update fails"
assert_match "$(tail -n1 <<<"$out")" "permission denied" "  ... in one line ($(tail -n1 <<<"$out"))"
assert_eq "$(mainpid)" "$pid" "  ... restarting nothing"

ok "uninstall" in_sysctr uninstall app
assert_eq "$(in_systemd test -e /var/lib/sysctr/updates/app.json && echo there)" "" "  ... removes the last-update record"

done_testing
