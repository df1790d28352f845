#!/bin/bash
# Offline (--root) install / list / uninstall: deployment layout, rendering
# (atomic /exports and native images), hardlinks into the store, the rootfs
# against `umoci unpack`, refusal to clobber, names, hostile values, and
# uninstall leaving the tree as it was.
# shellcheck disable=SC2016,SC2015,SC1003 # single-quoted $VARS/backslashes are template text; A && B || bail_out is intended
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/offline/lib-offline.sh"
require_root
require_cmd umoci jq ostree busybox sha256sum

# ------------------------------------------------------------------ images --
# etcd in atomic's /exports format (Debian's etcd binary; when that .deb is
# not available, the same /exports on a busybox layer: rendering is the same)
if build_atomic_etcd_image etcd v1 >"$TEST_TMPDIR/build.log" 2>&1; then
	diag "atomic etcd image: Debian etcd-server + tests/images/atomic-etcd/exports"
else
	diag "etcd .deb unavailable; atomic image on busybox instead"; diag_file "$TEST_TMPDIR/build.log" 5
	d=$(mktemp -d "$TEST_TMPDIR/x.XXXXXX"); cp -a "$SYSCTR_TEST_IMAGES_SRC/atomic-etcd/exports" "$d/"
	build_busybox_image etcd v1 "$d" --config.label=atomic.type=system || bail_out "cannot build images"
fi
ETCD=$(image_ref etcd v1)

# native busybox image: layer 2 adds files, layer 3 whites one out and makes
# a directory opaque
L2=$TEST_TMPDIR/l2; L3=$TEST_TMPDIR/l3
mkdir -p "$L2/srv/keep" "$L2/opq" "$L3/srv" "$L3/opq"
echo data >"$L2/srv/data"; echo old >"$L2/srv/old"; echo a >"$L2/opq/a"; echo k >"$L2/srv/keep/k"
ln "$L2/srv/data" "$L2/srv/data-link"; ln -s data "$L2/srv/data-sym"
: >"$L3/srv/.wh.old"; : >"$L3/opq/.wh..wh..opq"; echo b >"$L3/opq/b"
build_busybox_image bb v1 "$L2" --config.cmd=-c --config.cmd='echo hello $GREETING; sleep 1000' \
	--config.label=org.sysctr.default.GREETING=hello --config.volume=/var/cache/bb >/dev/null ||
	bail_out "cannot build the busybox image"
image_add_layer bb v1 "$L3" && image_gc bb || bail_out "cannot add the whiteout layer"
BB=$(image_ref bb v1)

# "hx": an atomic-format image whose templates put one value ($VAL) in a unit
# Description=, Environment=, ExecStartPre=, config.json strings and a
# templated hostfs file, $DIR in tmpfiles.d and renameFiles, $ADDTL_MOUNTS
# as a raw JSON splice.
HX=$TEST_TMPDIR/hx; mkdir -p "$HX/exports/hostfs/etc/hx"
cat >"$HX/exports/manifest.json" <<'J'
{ "version": "1.0",
  "defaultValues": { "VAL": "v", "DIR": "d", "ADDTL_MOUNTS": "" },
  "renameFiles": { "/etc/hx/hx.conf": "/etc/hx/$DIR/hx.conf" },
  "installedFilesTemplate": [ "/etc/hx/hx.conf" ] }
J
cat >"$HX/exports/service.template" <<'J'
[Unit]
Description=hx $VAL

[Service]
Environment=HX_VAL=$VAL
ExecStartPre=/bin/echo $VAL
ExecStart=$EXEC_START

[Install]
WantedBy=multi-user.target
J
printf 'd /var/lib/hx/$DIR 0700 0 0 - -\n' >"$HX/exports/tmpfiles.template"
cat >"$HX/exports/config.json.template" <<'J'
{ "ociVersion": "1.0.0",
  "process": { "args": ["/bin/sh", "-c", "echo $VAL"], "env": ["HX=$VAL"], "cwd": "/", "user": {"uid": 0, "gid": 0} },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "$NAME",
  "mounts": [ {"destination": "/proc", "type": "proc", "source": "proc"} $ADDTL_MOUNTS ],
  "linux": { "namespaces": [ {"type": "mount"}, {"type": "pid"}, {"type": "uts"} ] } }
J
printf 'val=$VAL\n' >"$HX/exports/hostfs/etc/hx/hx.conf"
build_busybox_image hx v1 "$HX" >/dev/null || bail_out "cannot build the hx image"
HXREF=$(image_ref hx v1)
# the same with a hostile default in a label
build_busybox_image hx badlabel "$HX" --config.label=org.sysctr.default.VAL=$'x\nUser=root' >/dev/null ||
	bail_out "cannot build hx:badlabel"
# a unit template (label) that uses a variable nobody sets
build_busybox_image hx badafter "$HX" --config.label='org.sysctr.after=a.service\' >/dev/null ||
	bail_out "cannot build the hx:badafter image"
# boot-task labels: a target with a second unit line, a target that is not one
build_busybox_image hx badtarget "$HX" --config.label=$'org.sysctr.target=sysinit.target\nExecStartPre=/bin/sh' >/dev/null ||
	bail_out "cannot build the hx:badtarget image"
build_busybox_image hx nottarget "$HX" --config.label=org.sysctr.target=sshd.service >/dev/null ||
	bail_out "cannot build the hx:nottarget image"
# reload and health labels from a hostile image
build_busybox_image hx badsig "$HX" --config.label=org.sysctr.reload-signal=SIGKILL >/dev/null || bail_out hx:badsig
build_busybox_image hx badreload "$HX" --config.label=$'org.sysctr.reload=kill 1\nExecStartPre=/bin/sh' >/dev/null ||
	bail_out hx:badreload
build_busybox_image hx badhealth "$HX" --config.label=$'org.sysctr.health-cmd=true\nUser=root' >/dev/null || bail_out hx:badhealth
build_busybox_image hx badinterval "$HX" --config.label=org.sysctr.health-cmd=true \
	--config.label=org.sysctr.health-interval=1d >/dev/null || bail_out hx:badinterval
build_busybox_image hx quoted "$HX" --config.label='org.sysctr.reload=echo $HOME %h "a b" x\"y' >/dev/null ||
	bail_out hx:quoted
build_busybox_image bbunset v1 "" --config.cmd=-c --config.cmd='sleep 1' \
	--config.label=org.sysctr.unit=$'[Service]\nExecStart=$EXEC_START\nEnvironment=X=$NOT_SET_ANYWHERE\n' >/dev/null ||
	bail_out "cannot build bbunset"

manifest_digest() { jq -r --arg t "$2" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t).digest' \
	"$(image_layout "$1")/index.json"; }

# ================================================================ install ===
R=$TEST_TMPDIR/root; mkdir -p "$R/etc"
C=$R/var/lib/sysctr/containers
run_sc "$R" install --system --privileged --name=etcd --set ETCD_PORT=12379 "$ETCD"
if ! assert_eq "$SC_RC" 0 "install the atomic etcd image into --root"; then diag "$SC_ERR"; bail_out "install failed"; fi
assert_not_match "$SC_ERR" "linux.resources" "linux.resources (a devices deny rule) translated without a warning"
assert_eq "$(readlink "$C/etcd")" etcd.0 "containers/etcd -> etcd.0"
for f in config.json info.json rootfs rendered/etc/systemd/system/etcd.service rendered/etc/tmpfiles.d/sysctr-etcd.conf; do
	assert_file "$C/etcd.0/$f" "deployment has $f"
done
CFG=$C/etcd.0/config.json INFO=$C/etcd.0/info.json
assert_eq "$(jq -c .root "$CFG")" '{"path":"rootfs","readonly":true}' "config.json: root is rootfs, read-only"
assert_eq "$(jq '[.mounts[]|select(.destination=="/run" and .type=="tmpfs")]|length' "$CFG")" 1 "config.json: a /run tmpfs was added"
assert_eq "$(jq '.linux|has("resources")' "$CFG")" false "config.json: linux.resources removed"
assert_eq "$(jq 'has("platform")' "$CFG")" false "config.json: platform removed"
assert_eq "$(jq -r '.process.env[]|select(startswith("ETCD_LISTEN_CLIENT_URLS="))' "$CFG")" \
	"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:12379" "config.json: --set value substituted"
assert_eq "$(jq -r '.mounts[]|select(.destination=="/var/lib/etcd").source' "$CFG")" /var/lib/etcd \
	"config.json: paths are as the tree sees them at boot (no --root prefix)"
# /run before /run/etcd, or the bind would be hidden
assert_eq "$(jq -r '[.mounts[].destination]|(index("/run") < index("/run/etcd"))' "$CFG")" true "/run tmpfs mounted before /run/etcd"

U=$R/etc/systemd/system/etcd.service
assert_eq "$(head -n1 "$U")" '# sysctr: generated for container etcd; remove with "sysctr uninstall etcd"' "unit: marker on the first line"
assert_match "$(grep '^RequiresMountsFor=' "$U")" "/var/lib/sysctr/containers/etcd.0( |$)" "unit: RequiresMountsFor= the deployment"
SHIM=$(jq -r .shim_path "$INFO")
assert_match "$SHIM" '^/.*/sysctr-shim$' "info.json: absolute shim path ($SHIM)"
[[ -n "${SYSCTR_SHIM:-}" ]] && assert_eq "$SHIM" "$SYSCTR_SHIM" "shim path is the configured libexecdir one"
assert_eq "$(grep '^ExecStart=' "$U")" "ExecStart=$SHIM --bundle=/var/lib/sysctr/containers/etcd.0 --name=etcd" "unit: ExecStart runs the shim on the bundle"
assert_eq "$(grep -c -F "$R" "$U")" 0 "unit: no --root prefix in it"
assert_eq "$(grep '^Description=' "$U")" "Description=etcd key-value store (system container etcd)" "unit: \$NAME substituted"
ok "unit == rendered copy" cmp "$U" "$C/etcd.0/rendered/etc/systemd/system/etcd.service"
assert_eq "$(readlink "$R/etc/systemd/system/multi-user.target.wants/etcd.service")" /etc/systemd/system/etcd.service \
	"enabled as systemctl --root does (WantedBy=multi-user.target)"
T=$R/etc/tmpfiles.d/sysctr-etcd.conf
assert_eq "$(sed -n 2,3p "$T")" $'d /var/lib/etcd 0700 0 0 - -\nd /run/etcd 0755 0 0 - -' "tmpfiles.d: rendered"
assert_match "$(head -n1 "$T")" '^# sysctr: generated for container etcd;' "tmpfiles.d: marker"
ok "hostfs: renameFiles put etcd.conf at \$CONF_DIRECTORY/\$NAME" \
	cmp "$R/etc/etcd/etcd.conf" "$SYSCTR_TEST_IMAGES_SRC/atomic-etcd/exports/hostfs/etc/sysctr-test-etcd/etcd.conf"
assert_no_file "$R/etc/sysctr-test-etcd" "hostfs: not also at its original path"

# info.json
assert_eq "$(jq .format "$INFO")" 2 "info.json: format 2"
assert_match "$(jq -r .deployed_at "$INFO")" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "info.json: deployed_at, an ISO 8601 time"
assert_eq "$(jq -c '.created|type' "$INFO")" '"array"' "  ... apart from created, the host directories sysctr made"
assert_eq "$(jq -r .image.manifest_digest "$INFO")" "$(manifest_digest etcd v1)" "info.json: image digest"
assert_eq "$(jq -r .image.reference "$INFO")" "$ETCD" "info.json: image reference"
assert_eq "$(jq -r .values.ETCD_PORT "$INFO")" 12379 "info.json: values (--set)"
assert_eq "$(jq -r .values.ETCD_PEER_PORT "$INFO")" 2380 "info.json: values (image default)"
assert_match "$(jq -r .values.UUID "$INFO")" '^[0-9a-f-]{36}$' "info.json: a UUID"
assert_eq "$(jq -r .runtime "$INFO")" sysctr-shim "info.json: runtime"
assert_eq "$(jq -c .pull_options "$INFO")" '{"tls_verify":true,"authfile":null,"platform":null}' "info.json: pull options"
bad=""
while IFS=$'\t' read -r p s; do
	[[ "$(sha256sum <"$R$p" | cut -d' ' -f1)" == "$s" ]] || bad+=" $p"
done < <(jq -r '.files[]|[.path,.sha256]|@tsv' "$INFO")
assert_eq "$(jq '.files|length' "$INFO")/$bad" "3/" "info.json: 3 host files, each sha256 matches the host"

# rootfs: hardlinks into the store, same content as umoci unpack
REPO=$R/var/lib/sysctr/repo
check_hardlinks() { # ROOTFS LAYER-COMMIT PATH: same inode as the repo object
	local rootfs=$1 ref=$2 p=$3 sum
	sum=$(ostree --repo="$REPO" ls -C "$ref" "$p" | awk '{print $5}')
	[[ -n "$sum" ]] || { echo "no $p in $ref"; return 1; }
	[[ "$(stat -c %i "$REPO/objects/${sum:0:2}/${sum:2}.file")" == "$(stat -c %i "$rootfs$p")" ]]
}
single=$(find "$C/etcd.0/rootfs" -type f -links 1 | head -5)
assert_eq "$single" "" "rootfs: no regular file with a link count of 1 (all hardlinks)"
L1=$(jq -r '.image.layers[0]' "$INFO"); L1=sysctr/layer/${L1#sha256:}
bin=/bin/busybox; [[ -e "$C/etcd.0/rootfs/usr/bin/etcd" ]] && bin=/usr/bin/etcd
ok "rootfs $bin is the store's object (same inode)" check_hardlinks "$C/etcd.0/rootfs" "$L1" "$bin"

# compare with umoci unpack: every entry umoci makes, same type/mode/owner/
# size/target and content; extra entries only mount points config.json names
compare_umoci() { # NAME TAG SLOTDIR
	local u=$TEST_TMPDIR/unpack-$1 extra dest
	rm -rf "$u"; umoci unpack --image "$(image_layout "$1"):$2" "$u" >/dev/null || return 1
	( cd "$u/rootfs" && find . -printf '%p %y %m %U %G %s %l\n' | LC_ALL=C sort ) >"$u.want"
	( cd "$3/rootfs" && find . -printf '%p %y %m %U %G %s %l\n' | LC_ALL=C sort ) >"$u.got"
	# entries only in ours must be directories made as mount points
	extra=$(LC_ALL=C comm -13 "$u.want" "$u.got")
	while read -r p y _; do
		[[ -z "$p" ]] && continue
		dest=${p#.}
		[[ "$y" == d ]] && jq -e --arg d "$dest" 'any(.mounts[].destination; .==$d or startswith($d+"/"))' "$3/config.json" >/dev/null && continue
		echo "unexpected in deployment: $p $y"; return 1
	done <<<"$extra"
	local missing; missing=$(LC_ALL=C comm -23 "$u.want" "$u.got")
	[[ -z "$missing" ]] || { echo "differs from umoci:"; head -20 <<<"$missing"; return 1; }
	diff -r --no-dereference "$u/rootfs" "$3/rootfs" 2>&1 | grep -v '^Only in '"$3"'/rootfs' | head -5 | grep . && return 1
	return 0
}
ok "etcd rootfs == umoci unpack (file by file: type, mode, owner, size, content)" compare_umoci etcd v1 "$C/etcd.0"

# ------------------------------------------------------ native busybox ------
run_sc "$R" install --system --name=bb "$BB"
assert_eq "$SC_RC" 0 "install the native busybox image" || diag "$SC_ERR"
BI=$C/bb.0/info.json
assert_eq "$(jq -c .process.args "$C/bb.0/config.json")" '["/bin/sh","-c","echo hello $GREETING; sleep 1000"]' "derived config.json: Entrypoint + Cmd"
assert_eq "$(jq -c .root "$C/bb.0/config.json")" '{"path":"rootfs","readonly":true}' "derived config.json: read-only root"
assert_eq "$(jq -r .values.GREETING "$BI")" hello "label org.sysctr.default.GREETING became a value"
BU=$R/etc/systemd/system/bb.service
assert_eq "$(head -n1 "$BU")" '# sysctr: generated for container bb; remove with "sysctr uninstall bb"' "default unit: marker"
assert_eq "$(grep '^ExecStart=' "$BU")" "ExecStart=$SHIM --bundle=/var/lib/sysctr/containers/bb.0 --name=bb" "default unit: ExecStart"
assert_match "$(grep '^RequiresMountsFor=' "$BU")" "/var/lib/sysctr/containers/bb.0( |$)" "default unit: RequiresMountsFor="
assert_contains "$(cat "$R/etc/tmpfiles.d/sysctr-bb.conf")" "d /var/lib/bb/var/cache/bb 0755 0 0 - -" "tmpfiles.d: image volume under the state path"
assert_no_file "$C/bb.0/rootfs/srv/old" "whiteout .wh.old removed srv/old"
assert_no_file "$C/bb.0/rootfs/opq/a" "opaque directory hid opq/a"
assert_file "$C/bb.0/rootfs/opq/b" "opaque directory kept the layer's own opq/b"
assert_eq "$(stat -c %i "$C/bb.0/rootfs/srv/data")" "$(stat -c %i "$C/bb.0/rootfs/srv/data-link")" "a hardlink in a layer stays a hardlink"
ok "busybox rootfs == umoci unpack (whiteouts, hardlinks, symlinks)" compare_umoci bb v1 "$C/bb.0"

# ------------------------------------------------------------------ list ----
run_sc "$R" list --json
assert_eq "$SC_RC" 0 "list --json"
assert_eq "$(jq -c '[.[]|[.name,.deployment,.state]]' <<<"$SC_OUT")" '[["bb","bb.0","unknown"],["etcd","etcd.0","unknown"]]' \
	"list --json: both, active slot, state unknown under --root"
assert_eq "$(jq -r '.[]|select(.name=="etcd").digest' <<<"$SC_OUT")" "$(manifest_digest etcd v1)" "list --json: digest"
run_sc "$R" list
assert_match "$SC_OUT" $'\n''etcd +oci:' "list: a table"

# ------------------------------------------------------------- refusals -----
snap() { tree_listing "$R" >"$TEST_TMPDIR/snap.$1"; }
same_as() { tree_listing "$R" | diff "$TEST_TMPDIR/snap.$1" - >"$TEST_TMPDIR/snap.diff"; }
refused() { # DESC PATTERN ARGS... : exit 1, one line naming PATTERN, tree unchanged
	local desc=$1 pat=$2; shift 2
	snap r
	run_sc "$R" "$@"
	if (( SC_RC != 0 )) && one_line "$SC_ERR" && [[ "$SC_ERR" == *"$pat"* ]] && same_as r; then pass "$desc"; return 0; fi
	fail "$desc"; diag "exit $SC_RC; stderr:"; diag "$SC_ERR"; diag_file "$TEST_TMPDIR/snap.diff" 20; return 1
}
mkdir -p "$R/usr/lib/systemd/system"; printf '[Service]\nExecStart=/bin/true\n' >"$R/usr/lib/systemd/system/foo.service"
refused "a vendor unit foo.service makes install refuse, naming it" "$R/usr/lib/systemd/system/foo.service" install --system --name=foo "$BB"
rm "$R/usr/lib/systemd/system/foo.service"
printf '[Service]\nExecStart=/bin/true\n' >"$R/etc/systemd/system/foo.service"
refused "an admin unit in /etc without marker makes install refuse" "$R/etc/systemd/system/foo.service" install --system --name=foo "$BB"
printf '[Socket]\nListenStream=1\n' >"$R/etc/systemd/system/foo.socket"; rm "$R/etc/systemd/system/foo.service"
refused "a foreign foo.socket makes install refuse too" "foo.socket" install --system --name=foo "$BB"
rm "$R/etc/systemd/system/foo.socket"
refused "already installed: refused" "already installed" install --system --privileged --name=etcd "$ETCD"
refused "--now with --root: refused" "--now" install --system --now --name=foo "$BB"
mkdir -p "$R/etc/hx/d"; echo mine >"$R/etc/hx/d/hx.conf"
refused "an admin's host file where hostfs would go: refused, naming it" "$R/etc/hx/d/hx.conf" install --system --privileged --name=hx "$HXREF"
rm -r "$R/etc/hx"
long=$(printf 'n%.0s' {1..300})
for n in / .. 'a b' 'é' "$long" a.b '' -x 'a@b' '../../etc' 'a/b' $'a\nb'; do
	refused "invalid name $(printf %q "${n:0:20}"): refused with one line" "invalid" install --system --name="$n" "$BB"
done
for cmd in uninstall update rollback; do
	refused "$cmd ../x: refused with one line" "invalid" "$cmd" ../x
done
refused "uninstall of something not installed: one line" "not installed" uninstall nothere

# ------------------------------------------------------ hostile values ------
# Each value is refused with one line and nothing installed, or installed
# neutralised: same lines in the unit as the template gives, no User=/
# ExecStartPre= of its own, the same JSON keys and mounts.
hostile() { # DESC ARGS...  (install --name=hx ARGS... [image])
	local desc=$1; shift
	snap h
	run_sc "$R" install --system --privileged --name=hx "$@"
	if (( SC_RC != 0 )); then
		if one_line "$SC_ERR" && same_as h; then pass "$desc: refused ($(head -c 150 <<<"$SC_ERR"))"; return 0; fi
		fail "$desc: refused, but not cleanly"; diag "$SC_ERR"; diag_file "$TEST_TMPDIR/snap.diff" 20; return 1
	fi
	local u=$R/etc/systemd/system/hx.service why=""
	[[ "$(grep -c '' "$u")" == 15 ]] || why+=" unit has $(grep -c '' "$u") lines, not 15 (12 + the device policy + SyslogIdentifier=);"
	grep -q '^User=' "$u" && why+=" User= in unit;"
	[[ "$(grep -c '^ExecStartPre=' "$u")" == 1 ]] || why+=" ExecStartPre= count;"
	[[ "$(grep -c '^Environment=' "$u")" == 1 ]] || why+=" Environment= count;"
	grep -q '^Environment=HX_VAL=[^ ]*$' "$u" || grep -q '^Environment="HX_VAL=.*"$' "$u" || why+=" Environment= has more than HX_VAL;"
	[[ "$(jq -c 'keys' "$C/hx.0/config.json")" == '["hostname","linux","mounts","ociVersion","process","root"]' ]] || why+=" config.json keys changed;"
	[[ "$(jq -c '.process|keys' "$C/hx.0/config.json")" == '["args","cwd","env","user"]' ]] || why+=" process keys changed;"
	[[ "$(jq '.process.env|length' "$C/hx.0/config.json")" == 1 ]] || why+=" env entries added;"
	[[ "$(grep -c '' "$R/etc/tmpfiles.d/sysctr-hx.conf")" == 2 ]] || why+=" tmpfiles lines;"
	find "$R/etc/hx" -name hx.conf | grep -q . || why+=" hx.conf not under /etc/hx;"
	[[ -n "$NEUTRAL_CHECK" ]] && ! eval "$NEUTRAL_CHECK" && why+=" check '$NEUTRAL_CHECK' failed;"
	if [[ -z "$why" ]]; then pass "$desc: neutralised"; else fail "$desc:$why"; diag_file "$u"; fi
	sc "$R" uninstall --purge hx >/dev/null 2>&1
	NEUTRAL_CHECK=""
}
NEUTRAL_CHECK=""
hostile "VAL with a newline + User=root" --set $'VAL=x\nUser=root' "$HXREF"
hostile "VAL injecting ExecStartPre=" --set $'VAL=x\nExecStartPre=/bin/sh -c "id >/tmp/pwned"' "$HXREF"
NEUTRAL_CHECK='grep -q "^Description=hx x\\\\\\\\$" "$u"'
hostile "VAL ending in a backslash (line continuation)" --set 'VAL=x\' "$HXREF"
hostile 'VAL with a double quote' --set 'VAL=a"b' "$HXREF"
NEUTRAL_CHECK='grep -q "^ExecStartPre=/bin/echo \$\$HOME$" "$u"'
hostile 'VAL=$HOME (no expansion by systemd)' --set 'VAL=$HOME' "$HXREF"
NEUTRAL_CHECK='grep -q "^Description=hx %%h%%n$" "$u" && grep -q "^ExecStartPre=/bin/echo %%h%%n$" "$u"'
hostile 'VAL with % specifiers' --set 'VAL=%h%n' "$HXREF"
hostile 'VAL adding an environment variable (a B=c)' --set 'VAL=a LD_PRELOAD=/tmp/x.so' "$HXREF"
hostile 'VAL with a semicolon (second command)' --set 'VAL=a ; /bin/sh' "$HXREF"
hostile "VAL of 100000 bytes" --set "VAL=$(head -c 100000 /dev/zero | tr '\0' x)" "$HXREF"
hostile 'VAL with a control character' --set "VAL=$(printf 'a\tb')" "$HXREF"
hostile 'ADDTL_MOUNTS closing the array to add a key' --set 'ADDTL_MOUNTS=], "x": [' "$HXREF"
hostile 'ADDTL_MOUNTS adding hooks' --set 'ADDTL_MOUNTS=, {"destination":"/x","type":"tmpfs","source":"tmpfs"}], "hooks": {"prestart": [{"path": "/bin/sh"}]}, "m": [1' "$HXREF"
hostile 'ADDTL_MOUNTS as an object' --set 'ADDTL_MOUNTS={"a": 1}' "$HXREF"
hostile 'DIR=/../../ escaping renameFiles' --set 'DIR=/../../../tmp/evil' "$HXREF"
hostile 'DIR=.. in tmpfiles and renameFiles' --set 'DIR=..' "$HXREF"
hostile 'DIR with a space (extra tmpfiles field)' --set 'DIR=a 0777' "$HXREF"
hostile 'DIR with a quote (tmpfiles quoting)' --set 'DIR=a"' "$HXREF"
hostile 'DIR into sysctr state' --set 'DIR=../../var/lib/sysctr/x' "$HXREF"
hostile "a label default with a newline" "$(image_ref hx badlabel)"
hostile "an ordering label ending in a backslash (joins the next unit line)" "$(image_ref hx badafter)"
hostile "a target label with a newline (a second unit line)" "$(image_ref hx badtarget)"
hostile "a target label naming a service" "$(image_ref hx nottarget)"
hostile "a reload signal the shim does not forward (SIGKILL)" "$(image_ref hx badsig)"
hostile "a reload command with a newline (a second unit line)" "$(image_ref hx badreload)"
hostile "a health command with a newline" "$(image_ref hx badhealth)"
hostile "a health interval that is no duration (1d)" "$(image_ref hx badinterval)"
# a reload command's words reach ExecReload= quoted: no variable, no
# specifier, no word split
run_sc "$R" install --system --privileged --name=hx "$(image_ref hx quoted)"
assert_eq "$SC_RC/$(grep '^ExecReload=' "$R/etc/systemd/system/hx.service" | sed 's/^ExecReload=[^ ]*//')" \
	'0/ --exec=${MAINPID} --name=hx -- "echo" "$$HOME" "%%h" "a b" "x\"y"' \
	"org.sysctr.reload: each word quoted for systemd (\$\$, %%, spaces, quotes)" || diag "$SC_ERR"
sc "$R" uninstall --purge hx >/dev/null 2>&1
hostile "STATE_DIRECTORY with a newline (RequiresMountsFor=, tmpfiles, --purge)" --set $'STATE_DIRECTORY=/var/lib\nUser=root' "$HXREF"
hostile "STATE_DIRECTORY with a space" --set 'STATE_DIRECTORY=/var/lib /etc' "$HXREF"
hostile "STATE_DIRECTORY climbing out (/var/lib/../../etc)" --set 'STATE_DIRECTORY=/var/lib/../../etc' "$HXREF"
hostile "STATE_DIRECTORY inside sysctr's own state" --set 'STATE_DIRECTORY=/var/lib/sysctr' "$HXREF"
# a valid splice is accepted and lands as one more mount
run_sc "$R" install --system --privileged --name=hx --set 'ADDTL_MOUNTS=, {"destination": "/extra", "type": "tmpfs", "source": "tmpfs"}' "$HXREF"
assert_eq "$SC_RC/$(jq -r '.mounts[]|select(.destination=="/extra").type' "$C/hx.0/config.json" 2>/dev/null)" "0/tmpfs" \
	"ADDTL_MOUNTS with a valid mount object is spliced as one mount" || diag "$SC_ERR"
sc "$R" uninstall --purge hx >/dev/null 2>&1
# self reference: not expanded recursively
run_sc "$R" install --system --privileged --name=hx --set 'VAL=$VAL'
run_sc "$R" install --system --privileged --name=hx --set 'VAL=$VAL' "$HXREF"
assert_eq "$SC_RC" 0 "VAL='\$VAL' installs" || diag "$SC_ERR"
assert_eq "$(grep '^Description=' "$R/etc/systemd/system/hx.service")" 'Description=hx $VAL' "self reference kept literal (unit)"
assert_eq "$(jq -r '.process.env[0]' "$C/hx.0/config.json")" 'HX=$VAL' "self reference kept literal (config.json)"
assert_eq "$(cat "$R/etc/hx/d/hx.conf")" 'val=$VAL' "self reference kept literal (templated hostfs file)"
sc "$R" uninstall --purge hx >/dev/null 2>&1
refused "a template using an unset variable: error naming it" "NOT_SET_ANYWHERE" install --system --name=bbunset "$(image_ref bbunset v1)"
refused "--set of a forced variable (NAME) is refused" "NAME" install --system --privileged --name=hx --set NAME=x "$HXREF"
refused "--set with an invalid variable name" "not a valid variable name" install --system --privileged --name=hx --set 'A-B=x' "$HXREF"

# ------------------------------------------------------------- uninstall ----
# From a root with only the store: install + uninstall leaves it as it was.
R2=$TEST_TMPDIR/root2; mkdir -p "$R2/etc"
sc "$R2" pull "$ETCD" >/dev/null 2>&1 && sc "$R2" pull "$BB" >/dev/null 2>&1 || bail_out "pull into root2 failed"
tree_listing "$R2" >"$TEST_TMPDIR/before"
ok "install etcd + bb into a fresh root" sh -c "'$SYSCTR' --root='$R2' install --system --privileged --name=etcd '$ETCD' && '$SYSCTR' --root='$R2' install --system --name=bb '$BB'"
run_sc "$R2" uninstall etcd bb
assert_eq "$SC_RC" 0 "uninstall etcd bb" || diag "$SC_ERR"
assert_contains "$SC_OUT" "image stays in the store" "uninstall says the image stays"
tree_listing "$R2" | diff "$TEST_TMPDIR/before" - >"$TEST_TMPDIR/diff"
assert_eq "$(cat "$TEST_TMPDIR/diff")" "" "uninstall leaves the root exactly as before install (apart from the store)"
ok "the image is still in the store" sh -c "'$SYSCTR' --root='$R2' images list | grep -q etcd"

# state data: kept without --purge (and said), removed with it
sc "$R2" install --system --privileged --name=etcd "$ETCD" >/dev/null 2>&1
mkdir -p "$R2/var/lib/etcd/member"; echo x >"$R2/var/lib/etcd/member/db"
run_sc "$R2" uninstall etcd
assert_contains "$SC_OUT" "Kept state data in /var/lib/etcd" "uninstall without --purge keeps STATE_DIRECTORY/NAME and says so"
assert_file "$R2/var/lib/etcd/member/db" "state data still there"
sc "$R2" install --system --privileged --name=etcd "$ETCD" >/dev/null 2>&1
run_sc "$R2" uninstall --purge etcd
assert_contains "$SC_OUT" "Removed state data /var/lib/etcd" "uninstall --purge says it removed the state data"
tree_listing "$R2" | diff "$TEST_TMPDIR/before" - >"$TEST_TMPDIR/diff"
assert_eq "$(cat "$TEST_TMPDIR/diff")" "" "after --purge the root is as before install"

# an admin-edited host file is kept (and reported); the rest goes
sc "$R2" install --system --privileged --name=etcd "$ETCD" >/dev/null 2>&1
echo "# admin" >>"$R2/etc/etcd/etcd.conf"
run_sc "$R2" uninstall etcd
assert_contains "$SC_ERR" "/etc/etcd/etcd.conf: edited since sysctr wrote it" "uninstall keeps an admin-edited host file and says so"
assert_file "$R2/etc/etcd/etcd.conf" "edited file still there"
assert_no_file "$R2/etc/systemd/system/etcd.service" "the unit is gone"
rm -r "$R2/etc/etcd"
tree_listing "$R2" | diff "$TEST_TMPDIR/before" - >"$TEST_TMPDIR/diff"
assert_eq "$(cat "$TEST_TMPDIR/diff")" "" "apart from that file, the root is as before"

# a second container sharing directories: the last one out removes them
sc "$R2" install --system --name=b1 "$BB" >/dev/null 2>&1; sc "$R2" install --system --name=b2 "$BB" >/dev/null 2>&1
sc "$R2" uninstall b1 >/dev/null 2>&1
assert_file "$R2/etc/systemd/system/b2.service" "uninstall b1 leaves b2's unit"
sc "$R2" uninstall b2 >/dev/null 2>&1
tree_listing "$R2" | diff "$TEST_TMPDIR/before" - >"$TEST_TMPDIR/diff"
assert_eq "$(cat "$TEST_TMPDIR/diff")" "" "two containers sharing /etc dirs: after both uninstalls the root is as before"

# without root: one line that says so, nothing written
chmod 755 "$TEST_TMPDIR"
R4=$TEST_TMPDIR/root4; mkdir -p "$R4"; chmod 755 "$R4"
out=$(su nobody -s /bin/sh -c "'$SYSCTR' --root='$R4' install --system --name=nb '$BB'" 2>&1); rc=$?
assert_eq "$rc" 1 "install as an unprivileged user fails"
if one_line "$out" && [[ "$out" == *"needs to run as root"* ]]; then pass "  ... with one line saying it needs root"; else fail "  ... with one line saying it needs root"; diag "$out"; fi
assert_eq "$(find "$R4" -mindepth 1 | wc -l)" 0 "  ... and writes nothing"

# exit status: 2 for a command line that does not parse, 1 for a failure
R5=$TEST_TMPDIR/r5; mkdir -p "$R5"
for args in "install" "install --system" "install --bogus x" "pull --tls-verify=maybe x" "update --all --privileged" \
	"update" "rollback" "images inspect" "images frobnicate"; do
	# shellcheck disable=SC2086 # one word per argument
	run_sc "$R5" $args
	if (( SC_RC == 2 )) && one_line "$SC_ERR"; then pass "sysctr $args: exit 2, one line ($SC_ERR)"
	else fail "sysctr $args: exit 2, one line (rc $SC_RC)"; diag "$SC_ERR"; fi
done
run_sc "$R5" rollback nosuch
assert_eq "$SC_RC" 1 "a command that parses but fails (rollback of a container not installed): exit 1"

done_testing
