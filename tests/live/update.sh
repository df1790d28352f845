#!/bin/bash
# shellcheck disable=SC2154 # time_ms sets the variable it is given by name
# Live update/rollback in a booted systemd (issue: update, rollback,
# auto-update with readiness-gated rollback): etcd v1 -> v2 while a client
# writes, rollback, an update whose image never becomes ready is rolled back
# by `update --all`, update while stopped stays stopped, a version that asks
# for more is held back, the timer takes a GPG-signed version (signed by
# skopeo) and refuses an unsigned one under /etc/containers/policy.json, the
# timer verifies.
set -uo pipefail
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/lib/nspawn.sh"
. "$SYSCTR_SRCDIR/tests/lib/signing.sh"
require_root

registry_start >/dev/null || bail_out "registry did not start"

# v1, v2 (one file and a label differ) and v3 (etcd refuses to start: its
# template passes an unknown flag), all atomic-format etcd images.
build_atomic_etcd_image etcd v1 >/dev/null 2>&1 || bail_out "building etcd v1"
cp -a "$(image_layout etcd)" "$TEST_TMPDIR/v1-layout"
echo "version 2" >"$TEST_TMPDIR/version"
image_add_files etcd v1 "$TEST_TMPDIR/version:/etc/sysctr-test-version" >/dev/null &&
  image_label etcd v1 org.sysctr.test.version=2 >/dev/null || bail_out "building etcd v2"
# umoci edits the tag in place: the layout now holds v2 under "v1"
skopeo --insecure-policy copy -q "oci:$(image_layout etcd):v1" "oci:$(image_layout etcd):v2" || bail_out "tagging v2"
skopeo --insecure-policy copy -q "oci:$TEST_TMPDIR/v1-layout:v1" "oci:$(image_layout etcd):v1" || bail_out "restoring v1"
broken=$TEST_TMPDIR/broken-src
mkdir -p "$broken" && cp -a "$SYSCTR_SRCDIR/tests/images/atomic-etcd" "$broken/"
sed -i 's|"/usr/bin/etcd"$|"/usr/bin/etcd", "--no-such-flag"|' "$broken/atomic-etcd/exports/config.json.template"
grep -q no-such-flag "$broken/atomic-etcd/exports/config.json.template" || bail_out "making the broken template"
SYSCTR_TEST_IMAGES_SRC=$broken build_atomic_etcd_image etcdbad v3 >/dev/null 2>&1 || bail_out "building etcd v3"

ref=$REGISTRY_ADDR/etcd:stable
push_as() { skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$(image_layout "$1"):$2" "docker://$ref"; }
push_as etcd v1 || bail_out "pushing v1"

nspawn_boot >/dev/null || bail_out "booting systemd"
P=$(alloc_port) PP=$(alloc_port)
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$P" --dial-timeout=2s --command-timeout=3s "$@"; }
digest_of() { in_sysctr list --json | jq -r ".[] | select(.name==\"$1\") | .$2"; }

# atomic images ask for what atomic gave them (CAP_AUDIT_WRITE, no seccomp
# filter): granted once, here
ok "install v1 with --now" in_sysctr install --system --now --privileged --tls-verify=false --name=etcd \
  --set ETCD_PORT=$P --set ETCD_PEER_PORT=$PP --set AUTO_UPDATE=registry "$ref"
assert_eq "$(in_systemctl is-active etcd)" active "etcd is active"
v1_digest=$(digest_of etcd digest)
assert_eq "$(digest_of etcd deployment)" etcd.0 "v1 is deployment etcd.0"
ok "write before the update" etcdctl_ put before v1
uuid1=$(in_systemd jq -r .values.UUID /var/lib/sysctr/containers/etcd.0/info.json)

assert_contains "$(in_sysctr update etcd 2>&1)" "already up to date" "a no-op update says so"

push_as etcd v2 || bail_out "pushing v2"
# a client writes all along; a write may fail only while the update runs
# (the restart is inside it): each write logs its start time and result
(
  i=0
  while [[ ! -f $TEST_TMPDIR/stop-writer ]]; do
    i=$((i+1)); t=$(now_ms)
    if etcdctl_ put "k$i" "v$i" >/dev/null 2>&1; then echo "$t ok"; else echo "$t fail"; fi
    sleep 0.05
  done >"$TEST_TMPDIR/writes"
) &
writer=$!
sleep 1
pid_before=$(in_systemctl show -p MainPID --value etcd)
t_start=$(now_ms)
time_ms t_update in_sysctr update etcd >"$TEST_TMPDIR/update.out" 2>&1
rc=$?
t_end=$(now_ms)
sleep 1
touch "$TEST_TMPDIR/stop-writer"; wait $writer
writes=$(wc -l <"$TEST_TMPDIR/writes")
fails=$(grep -c ' fail$' "$TEST_TMPDIR/writes")
fails_outside=$(awk -v a="$t_start" -v b="$t_end" '$2 == "fail" && ($1 < a || $1 > b)' "$TEST_TMPDIR/writes" | wc -l)
ok_after=$(awk -v b="$t_end" '$2 == "ok" && $1 > b' "$TEST_TMPDIR/writes" | wc -l)
ok_before=$(awk -v a="$t_start" '$2 == "ok" && $1 < a' "$TEST_TMPDIR/writes" | wc -l)
assert_eq "$rc" 0 "update to v2 succeeds" || diag_file "$TEST_TMPDIR/update.out"
diag "update took ${t_update} ms; the writer made $writes writes, $fails failed (during the restart)"
assert_eq "$(digest_of etcd deployment)" etcd.1 "v2 is deployment etcd.1"
assert_ne "$(digest_of etcd digest)" "$v1_digest" "the digest changed"
assert_eq "$(in_systemctl is-active etcd)" active "etcd is active after the update (restarted once)"
assert_ne "$(in_systemctl show -p MainPID --value etcd)" "$pid_before" "the service was restarted"
assert_eq "$(in_systemd cat /var/lib/sysctr/containers/etcd/rootfs/etc/sysctr-test-version)" "version 2" "v2's file is in the active rootfs"
assert_eq "$(in_systemd jq -r .values.UUID /var/lib/sysctr/containers/etcd.1/info.json)" "$uuid1" "UUID kept across the update"
assert_eq "$(etcdctl_ get before --print-value-only)" v1 "data written before the update survives"
assert_eq "$fails_outside" 0 "no write failed outside the update's window (${t_update} ms; $fails of $writes failed inside it)"
if (( ok_before > 0 && ok_after > 0 )); then pass "the client wrote before the update and writes again after it ($ok_before, $ok_after)"
else fail "the client wrote before the update and writes again after it ($ok_before, $ok_after)"; fi

ok "rollback" in_sysctr rollback etcd
assert_eq "$(digest_of etcd deployment)" etcd.0 "rolled back to etcd.0"
assert_eq "$(digest_of etcd digest)" "$v1_digest" "rolled back to the v1 digest"
assert_eq "$(in_systemctl is-active etcd)" active "etcd is active after the rollback"
assert_eq "$(etcdctl_ get before --print-value-only)" v1 "data still there after the rollback"

# back to v2, then the broken v3 through the gated update --all
ok "update to v2 again" in_sysctr update etcd
push_as etcdbad v3 || bail_out "pushing v3"
in_sysctr update --all >"$TEST_TMPDIR/all.out" 2>&1
rc=$?
diag_file "$TEST_TMPDIR/all.out"
assert_ne "$rc" 0 "update --all reports the failure in its exit status"
assert_match "$(cat "$TEST_TMPDIR/all.out")" "rolled back|rolling back" "update --all says it rolled back"
assert_eq "$(in_systemctl is-active etcd)" active "etcd is active again on the previous deployment"
assert_eq "$(in_systemd cat /var/lib/sysctr/containers/etcd/rootfs/etc/sysctr-test-version)" "version 2" "the active deployment is v2 again"
assert_eq "$(etcdctl_ get before --print-value-only)" v1 "data intact after the automatic rollback"

# update while stopped leaves it stopped
push_as etcd v1 || bail_out "pushing v1 again"
ok "stop etcd" in_systemctl stop etcd
ok "update while stopped" in_sysctr update etcd
assert_eq "$(in_systemctl is-active etcd)" inactive "update while stopped leaves it stopped"
assert_eq "$(digest_of etcd digest)" "$v1_digest" "the stopped container was updated to v1"

# A version that asks for more than was granted (a bind of the host's /)
# is held back by the auto-update service: etcd keeps running what it ran.
wide=$TEST_TMPDIR/wide-src
mkdir -p "$wide" && cp -a "$SYSCTR_SRCDIR/tests/images/atomic-etcd" "$wide/"
sed -i 's|"mounts": \[|"mounts": [ {"type": "bind", "source": "/", "destination": "/host", "options": ["rbind", "ro"]},|' \
  "$wide/atomic-etcd/exports/config.json.template"
grep -q '"/host"' "$wide/atomic-etcd/exports/config.json.template" || bail_out "making the widening template"
SYSCTR_TEST_IMAGES_SRC=$wide build_atomic_etcd_image etcdwide v4 >/dev/null 2>&1 || bail_out "building etcd v4"
ok "start etcd again" in_systemctl start etcd
push_as etcdwide v4 || bail_out "pushing v4"
ok "link the auto-update service" in_systemctl link "$SYSCTR_PREFIX/lib/systemd/system/sysctr-auto-update.service"
in_systemctl start sysctr-auto-update.service >/dev/null 2>&1
assert_eq "$(in_systemctl show -p Result --value sysctr-auto-update.service)" exit-code \
  "the auto-update service fails when it holds a version back"
journal=$(systemd_journal -u sysctr-auto-update.service)
assert_match "$journal" "asks for more than was granted" "its journal says what is asked for"
assert_match "$journal" "host-mounts: / \\(ro\\)" "  ... naming the bind"
assert_eq "$(in_systemctl is-active etcd)" active "etcd keeps running"
assert_eq "$(digest_of etcd digest)" "$v1_digest" "  ... the deployment it had (v1)"
ok "etcd still answers" etcdctl_ get before
ok "update --allow=host-mounts takes it" in_sysctr update --allow=host-mounts etcd
assert_ne "$(digest_of etcd digest)" "$v1_digest" "  ... now on v4"
assert_eq "$(in_systemd jq -c '.privileges.granted["host-mounts"]' /var/lib/sysctr/containers/etcd/info.json 2>&1)" \
  '["/ (ro)"]' "  ... with the grant recorded"

# Signed images only, for this repository (containers-policy.json and
# registries.d in the booted system's /etc, as an admin writes them): the
# timer takes a version skopeo signed, then refuses an unsigned one while the
# signed one keeps serving.
fpr=$(gpg_key_new updater) || bail_out "making a GPG key"
in_systemd mkdir -p /etc/containers/registries.d
policy_write "$TEST_TMPDIR/policy.json" "$(policy_accept_anything)" \
  "$REGISTRY_ADDR/etcd" "$(policy_signed_by "$SIGNING_DIR/updater.gpg")" || bail_out "writing the policy"
ok "install the policy" in_systemd cp "$TEST_TMPDIR/policy.json" /etc/containers/policy.json
ok "install the registries.d file" in_systemd cp "$SIGNING_REGISTRIES_D/default.yaml" /etc/containers/registries.d/
signed=$(sign_push_gpg "$fpr" etcd:v2 "$ref") || bail_out "pushing v2 signed"
in_systemctl start sysctr-auto-update.service >/dev/null 2>&1
assert_eq "$(in_systemctl show -p Result --value sysctr-auto-update.service)" success \
  "the timer's service takes the signed version"
assert_eq "$(digest_of etcd digest)" "$signed" "  ... etcd runs it"
assert_eq "$(in_systemd cat /var/lib/sysctr/containers/etcd/rootfs/etc/sysctr-test-version)" "version 2" "  ... (v2)"
assert_match "$(in_sysctr info etcd 2>&1)" "Signature: signed by GPG key $fpr as $ref" \
  "info names the key and the identity that verified it"
ok "etcd answers on the signed version" etcdctl_ get before
push_unsigned etcd:v1 "$ref" >/dev/null || bail_out "pushing v1 unsigned"
in_systemctl reset-failed sysctr-auto-update.service >/dev/null 2>&1
in_systemctl start sysctr-auto-update.service >/dev/null 2>&1
assert_eq "$(in_systemctl show -p Result --value sysctr-auto-update.service)" exit-code \
  "the timer's service refuses the unsigned version"
journal=$(systemd_journal -u sysctr-auto-update.service)
assert_match "$journal" "Source image rejected: A signature was required, but no signature exists" \
  "  ... in the words podman uses"
assert_eq "$(in_systemctl is-active etcd)" active "etcd keeps running"
assert_eq "$(digest_of etcd digest)" "$signed" "  ... the signed version"
ok "etcd still answers" etcdctl_ get before
in_systemd rm -f /etc/containers/policy.json

# the timer and its service
# the throw-away systemd's /etc has no manpath.config, so man(1) cannot run
# in it: verify everything but the Documentation= pages there, and check on
# the host that the page they name is installed
for u in sysctr-auto-update.timer sysctr-auto-update.service; do
  ok "systemd-analyze verify $u" in_systemd systemd-analyze verify --man=no "$SYSCTR_PREFIX/lib/systemd/system/$u"
done
assert_file "$SYSCTR_PREFIX/share/man/man1/sysctr-update.1" "the timer's Documentation= page is installed"

ok "uninstall" in_sysctr uninstall --purge etcd
ok "prune --all" in_sysctr images prune --all
assert_eq "$(in_systemd ostree --repo=/var/lib/sysctr/repo refs | wc -l)" 0 "the store holds no refs"
done_testing
