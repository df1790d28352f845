# shellcheck shell=bash
# lib-inputs.sh — inputs for bench/run.sh: the large multi-layer image (v1, v2)
# built from Debian files on this machine, pushed to a loopback registry.
#
# Needs tests/lib/{libtest,registry,images}.sh sourced first.
#
# The image "big" (5 layers, gzip, made with GNU tar + `umoci raw add-layer`
# as tests/lib/images.sh does; umoci insert writes truncated layers):
#   1 perl    /usr/lib/x86_64-linux-gnu/perl{,-base} /usr/share/perl{,5}
#   2 python  /usr/lib/python3 /usr/lib/python3.11
#   3 tools   /usr/share/vim /usr/lib/git-core /usr/share/mime /usr/share/zoneinfo
#   4 libs    /usr/lib/x86_64-linux-gnu/dri /usr/lib/x86_64-linux-gnu/gconv /usr/share/i18n
#   5 app     /usr/share/icons + /opt/app/data.bin (10 MiB, pseudo-random)
# v2 differs only in /opt/app/data.bin (other 10 MiB), so only layer 5 changes:
# every tool refetches layer 5 (registries are layer-granular); what differs is
# how much each store keeps (sysctr's OSTree store deduplicates per file).
# Missing source dirs are skipped (the summary reports the real size).
#
# Also "small" (one layer: busybox-static + /usr/share/zoneinfo) for profiling.

BIG_LAYERS=(
	"usr/lib/x86_64-linux-gnu/perl usr/lib/x86_64-linux-gnu/perl-base usr/share/perl usr/share/perl5"
	"usr/lib/python3 usr/lib/python3.11"
	"usr/share/vim usr/lib/git-core usr/share/mime usr/share/zoneinfo"
	"usr/lib/x86_64-linux-gnu/dri usr/lib/x86_64-linux-gnu/gconv usr/share/i18n"
	"usr/share/icons"
)

# _tar_from_root OUT.tar PATH...   tar paths (relative to /) with fixed mtime
_tar_from_root() {
	local out=$1; shift
	local p have=()
	for p in "$@"; do [[ -e "/$p" ]] && have+=("$p"); done
	(( ${#have[@]} )) || { tar -cf "$out" -T /dev/null; return; }
	tar -C / --sort=name --numeric-owner --format=pax \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		--mtime=2020-01-01T00:00:00Z -cf "$out" -- "${have[@]}"
}

# _pseudo_random SEED BYTES   deterministic incompressible bytes
_pseudo_random() {
	openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" </dev/zero 2>/dev/null | head -c "$2"
}

# build_big_image NAME   tags v1 and v2 in $IMAGES_DIR/NAME
build_big_image() {
	local name=$1 tag i t d
	for tag in v1 v2; do
		image_new "$name" "$tag" || return 1
		for i in "${!BIG_LAYERS[@]}"; do
			t=$TEST_TMPDIR/layer-$tag-$i.tar
			# shellcheck disable=SC2086
			_tar_from_root "$t" ${BIG_LAYERS[$i]} || return 1
			if (( i == ${#BIG_LAYERS[@]} - 1 )); then
				d=$TEST_TMPDIR/app-$tag
				mkdir -p "$d/opt/app"
				_pseudo_random "sysctr-bench-$tag" $((10 * 1024 * 1024)) >"$d/opt/app/data.bin"
				tar -C "$d" --numeric-owner --format=pax --mtime=2020-01-01T00:00:00Z \
					--pax-option=delete=atime,delete=ctime -rf "$t" opt || return 1
				rm -rf "$d"
			fi
			image_add_layer_tar "$name" "$tag" "$t" || return 1
			rm -f "$t"
		done
		image_config "$name" "$tag" --config.entrypoint=/usr/bin/python3 \
			--config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.workingdir=/ || return 1
	done
	image_gc "$name"
}

# build_small_image NAME   tag v1: busybox + zoneinfo (~1.3k files), one layer
build_small_image() {
	local name=$1 d
	d=$(mktemp -d "$TEST_TMPDIR/small.XXXXXX") || return 1
	image_add_busybox "$d" || return 1
	mkdir -p "$d/usr/share" && cp -a /usr/share/zoneinfo "$d/usr/share/" || return 1
	image_new "$name" v1 && image_add_layer "$name" v1 "$d" || return 1
	rm -rf "$d"
	image_config "$name" v1 --config.entrypoint=/bin/sh --config.workingdir=/ || return 1
	image_gc "$name"
}

# image_stats NAME TAG   print "LAYERS COMPRESSED_BYTES UNPACKED_BYTES FILES"
image_stats() {
	local lay=$IMAGES_DIR/$1 m d n=0 comp=0 unp=0 files=0 s
	m=$(image_manifest "$1" "$2") || return 1
	for d in $(jq -r '.layers[].digest' <<<"$m"); do
		n=$((n + 1))
		s=$(stat -c %s "$lay/blobs/${d/://}")
		comp=$((comp + s))
		read -r s f < <(gzip -dc "$lay/blobs/${d/://}" | tar -tvf - 2>/dev/null |
			awk '{ if (substr($1,1,1)=="-") { b+=$3; f++ } } END { print b+0, f+0 }')
		unp=$((unp + s)) files=$((files + f))
	done
	echo "$n $comp $unp $files"
}
