# shellcheck shell=bash
# shellcheck disable=SC2034 # SC_* are read by the tests that source this
# lib-offline.sh — shared setup for the offline (--root=DIR) tests.
#
# Source after libtest.sh.  Provides:
#   SYSCTR               the built CLI ($SYSCTR_BUILDDIR/src/cli/sysctr)
#   sc ROOT ARGS...      run sysctr --root=ROOT ARGS...
#   run_sc ROOT ARGS...  like sc, but stores exit status, stdout and stderr in
#                        SC_RC, SC_OUT, SC_ERR (never fails)
#   tree_listing ROOT    every path under ROOT with type, mode and size (or
#                        link target), except the store's repo/ (the image
#                        store is allowed to keep what was pulled)
#   one_line TEXT        0 when TEXT (warnings dropped) is exactly one line
#   check_consistent ROOT NAME [PATH...]   "" when NAME is entirely one deployment (the
#                        symlink's slot has info.json, every host file it
#                        lists equals its rendered copy, nothing of the other
#                        slot is left on the host), else a description;
#                        PATHs are host files an admin edited (not compared)

: "${SYSCTR_BUILDDIR:?SYSCTR_BUILDDIR must point to the build tree}"
SYSCTR=$SYSCTR_BUILDDIR/src/cli/sysctr
export SYSCTR_TEMPLATES_DIR=${SYSCTR_TEMPLATES_DIR:-$SYSCTR_SRCDIR/templates}
[[ -x "$SYSCTR" ]] || bail_out "no sysctr binary at $SYSCTR (build first)"

sc() { local r=$1; shift; "$SYSCTR" --root="$r" "$@"; }

run_sc() {
	local r=$1; shift
	SC_OUT=$("$SYSCTR" --root="$r" "$@" 2>"$TEST_TMPDIR/.sc-err"); SC_RC=$?
	SC_ERR=$(cat "$TEST_TMPDIR/.sc-err")
	return 0
}

# tag_digest IMAGE TAG   the manifest digest TAG names in IMAGE's layout
tag_digest() {
	jq -r --arg t "$2" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t).digest' \
		"$(image_layout "$1")/index.json"
}

tree_listing() { # every file but the store and the record of update attempts (which every attempt writes)
	( cd "$1" && find . \( -path ./var/lib/sysctr/repo -o -path ./var/lib/sysctr/updates \) -prune -o \
		-printf '%p %y %m %s %l\n' | LC_ALL=C sort )
}
# last_update ROOT NAME   the result of NAME's last update attempt (info --json)
last_update() { "$SYSCTR" --root="$1" info --json "$2" | jq -r .last_update.result; }

one_line() {
	local t
	t=$(grep -v '^warning: ' <<<"$1" | grep -c .)
	[[ "$t" == 1 ]]
}

check_consistent() {
	local root=$1 name=$2 c=$1/var/lib/sysctr/containers
	shift 2
	local edited=" $* "
	local slot info path sha cur
	slot=$(readlink "$c/$name") || { echo "$name: no symlink"; return 0; }
	info=$c/$slot/info.json
	[[ -f "$info" ]] || { echo "$name -> $slot has no info.json"; return 0; }
	while IFS=$'\t' read -r path sha; do
		[[ "$edited" == *" $path "* ]] && continue
		[[ -f "$root$path" ]] || { echo "$name: $path missing on the host"; return 0; }
		cur=$(sha256sum <"$root$path" | cut -d' ' -f1)
		[[ "$cur" == "$sha" ]] || { echo "$name: $path differs from $slot's rendered copy"; return 0; }
		cmp -s "$root$path" "$c/$slot/rendered$path" || { echo "$name: $path != $slot/rendered$path"; return 0; }
	done < <(jq -r '.files[] | [.path, .sha256] | @tsv' "$info")
	# the service unit names this slot
	local unit
	unit=$(jq -r '.units[0] // empty' "$info")
	if [[ -n "$unit" ]] && ! grep -q -- "--bundle=/var/lib/sysctr/containers/$slot " "$root/etc/systemd/system/$unit"; then
		echo "$name: $unit does not run $slot"; return 0
	fi
	# enabled as the slot says
	local en
	en=$(jq -r '.enable // empty' "$info")
	if [[ -n "$en" ]] && ! compgen -G "$root/etc/systemd/system/*.wants/$en" >/dev/null; then
		echo "$name: $en is not enabled"; return 0
	fi
	# files only the other slot has are gone from the host
	local other=${slot%.*}.$(( 1 - ${slot##*.} ))
	if [[ -f "$c/$other/info.json" ]]; then
		while read -r path; do
			jq -e --arg p "$path" 'any(.files[]; .path == $p)' "$info" >/dev/null && continue
			[[ -e "$root$path" ]] && { echo "$name: $path of $other is still on the host"; return 0; }
		done < <(jq -r '.files[].path' "$c/$other/info.json")
	fi
	[[ -e "$c/.$name.pending" ]] && { echo "$name: journal .$name.pending left"; return 0; }
	echo ""
}
