#!/bin/bash
# data/sysctr.bash-completion, driven as bash drives it: COMP_WORDS and
# COMP_CWORD set, _sysctr called, COMPREPLY read. Container names come from
# a --root tree made here, stored images from a pull into it.
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
# shellcheck source=../lib/libtest.sh
. "$LIB/libtest.sh"
# shellcheck source=../lib/images.sh
. "$LIB/images.sh"
require_cmd umoci busybox
[[ -x ${SYSCTR_BUILDDIR:-}/src/cli/sysctr ]] || skip_all "no built sysctr (SYSCTR_BUILDDIR=${SYSCTR_BUILDDIR:-unset})"
PATH=$SYSCTR_BUILDDIR/src/cli:$PATH
# shellcheck source=../../data/sysctr.bash-completion
. "$SYSCTR_SRCDIR/data/sysctr.bash-completion"
compopt() { :; } # only valid while bash itself completes

# complete WORDS...: the reply for the last word, sorted, one line
complete_line() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	_sysctr
	((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}

R=$TEST_TMPDIR/root
C=$R/var/lib/sysctr/containers
mkdir -p "$C/etcd.0" "$C/etcd.1" "$C/box.0" "$R/etc"
ln -s etcd.1 "$C/etcd"; ln -s box.0 "$C/box"

assert_eq "$(complete_line sysctr i)" "images info install " "commands"
assert_eq "$(complete_line sysctr --root="$R" info '')" "box etcd " "info NAME: installed names (the NAME links, not the deployments)"
assert_eq "$(complete_line sysctr --root "$R" rollback e)" "etcd " "  ... with --root DIR too"
assert_eq "$(complete_line sysctr --root="$R" exec -t b)" "box " "exec NAME"
assert_eq "$(complete_line sysctr --root="$R" exec -t box '')" "" "exec NAME CMD: the command's words are not ours"
assert_eq "$(complete_line sysctr --root="$R" exec -u 1000 box ls '')" "" "  ... also after an option with a value"
assert_eq "$(complete_line sysctr exec --)" "--env= --help --tty --user= --workdir= " "exec options"
assert_eq "$(complete_line sysctr install --al)" "--allow= " "install --al"
assert_eq "$(complete_line sysctr install --allow=host-e)" "--allow=host-exec " "--allow=: privilege names"
assert_eq "$(complete_line sysctr update --allow=capabilities,dev)" "--allow=capabilities,devices " "  ... after a comma"
assert_eq "$(complete_line sysctr update --update-lock)" "--update-lock-cacert= --update-lock-cert= --update-lock-key= --update-lock-max= --update-lock-name= --update-lock-password-file= --update-lock-ttl= --update-lock-user= --update-lock= " "update: the lock options"
assert_eq "$(complete_line sysctr update --cl)" "--clear-halt " "update --clear-halt"
assert_eq "$(complete_line sysctr images '')" "inspect list prune rm " "images subcommands"

build_busybox_image tiny v1 "" >/dev/null || bail_out "cannot build an image"
sysctr --root="$R" pull "$(image_ref tiny v1)" >/dev/null 2>&1 || bail_out "cannot pull into the tree"
assert_eq "$(complete_line sysctr --root="$R" images inspect '')" "$(image_ref tiny v1) " "images inspect: stored images"
done_testing
