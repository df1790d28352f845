# shellcheck shell=bash
# images.sh — build OCI test images without a daemon (umoci) and push them (skopeo).
#
# Needs libtest.sh (TEST_TMPDIR, cleanup); image_push also wants registry.sh's
# REGISTRY_* variables (or an explicit destination).
#
# Found on this machine (umoci 0.4.7+ds-3+b7, Debian 12):
#   `umoci insert` writes TRUNCATED layers: the tar stream lacks the padding of
#   the last file and the end-of-archive blocks (GNU tar and Python's tarfile
#   both fail with "unexpected EOF"; a strict layer reader in sysctr would
#   rightly refuse them).  `umoci repack` and `umoci raw add-layer` are fine.
#   So every layer here is made with GNU tar (sorted, numeric owners, fixed
#   mtime unless IMAGE_KEEP_MTIME=1) and added with `umoci raw add-layer`,
#   which gzips it and records the diff_id.  This also lets a test hand-craft
#   layers (whiteouts `.wh.NAME`, opaque `.wh..wh..opq`, hardlinks, symlinks).
#   Debian's etcd (3.4.23) is NOT static: it links libc.so.6 and
#   ld-linux-x86-64.so.2, which image_add_binary copies along (ldd).
#
# Layouts live in IMAGES_DIR (default $TEST_TMPDIR/oci), one OCI layout per
# image NAME: $IMAGES_DIR/NAME, tags inside it.  References for tools:
#   oci:$IMAGES_DIR/NAME:TAG          (image_ref NAME TAG)
#
# Env read:
#   IMAGES_DIR            where layouts go (default $TEST_TMPDIR/oci)
#   SYSCTR_TEST_CACHE     download cache (default /var/cache/sysctr-test); the
#                         etcd-server .deb is kept there and reused
#   REGISTRY_ADDR, REGISTRY_USER, REGISTRY_PASSWORD   default push target
#   IMAGE_KEEP_MTIME      keep file mtimes in layers (default: all 2020-01-01)

[[ -n "${_IMAGES_SH:-}" ]] && return 0
_IMAGES_SH=1

IMAGES_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${IMAGES_DIR:=$TEST_TMPDIR/oci}"
: "${SYSCTR_TEST_CACHE:=/var/cache/sysctr-test}"
: "${SYSCTR_TEST_IMAGES_SRC:=$IMAGES_LIB_DIR/../images}"

# image_layout NAME     print the layout directory of image NAME
image_layout() { echo "$IMAGES_DIR/$1"; }

# image_ref NAME TAG    print the transport reference oci:DIR:TAG
image_ref() { echo "oci:$IMAGES_DIR/$1:$2"; }

# image_new NAME TAG    create an empty image (layout created if needed)
image_new() {
	local lay=$IMAGES_DIR/$1
	mkdir -p "$IMAGES_DIR"
	[[ -f "$lay/index.json" ]] || umoci init --layout "$lay" || return 1
	umoci new --image "$lay:$2"
}

# image_add_layer_tar NAME TAG TARFILE   add an uncompressed tar as the next layer
image_add_layer_tar() {
	umoci raw add-layer --image "$IMAGES_DIR/$1:$2" "$3"
}

# image_make_tar SRCDIR OUT.tar   tar SRCDIR's contents (no "./" prefix, sorted)
image_make_tar() {
	local src=$1 out=$2 mt=()
	[[ -z "${IMAGE_KEEP_MTIME:-}" ]] && mt=(--mtime=2020-01-01T00:00:00Z)
	local entries=()
	mapfile -t entries < <(cd "$src" && LC_ALL=C ls -A)
	if (( ${#entries[@]} == 0 )); then
		tar -cf "$out" -T /dev/null
	else
		tar -C "$src" --sort=name --numeric-owner --format=pax \
			--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
			"${mt[@]}" -cf "$out" -- "${entries[@]}"
	fi
}

# image_add_layer NAME TAG SRCDIR   add SRCDIR's contents as one layer at /
#   (whiteouts are just files named .wh.X / .wh..wh..opq in SRCDIR)
image_add_layer() {
	local t
	t=$(mktemp "$TEST_TMPDIR/layer.XXXXXX.tar") || return 1
	image_make_tar "$3" "$t" && image_add_layer_tar "$1" "$2" "$t"
	local rc=$?
	rm -f "$t"
	return $rc
}

# image_add_files NAME TAG SRC:DEST...   one layer with host files at DEST paths
#   (DEST absolute; directories are created; modes kept)
image_add_files() {
	local name=$1 tag=$2; shift 2
	local d spec src dest
	d=$(mktemp -d "$TEST_TMPDIR/files.XXXXXX") || return 1
	for spec in "$@"; do
		src=${spec%%:*} dest=${spec#*:}
		mkdir -p "$d$(dirname "$dest")"
		cp -a "$src" "$d$dest" || { rm -rf "$d"; return 1; }
	done
	image_add_layer "$name" "$tag" "$d"
	local rc=$?
	rm -rf "$d"
	return $rc
}

# image_config NAME TAG UMOCI-CONFIG-ARGS...
#   passthrough to `umoci config`, e.g.
#   --config.entrypoint=/usr/bin/etcd --config.cmd=ARG --config.env=K=V
#   --config.label=K=V --config.exposedports=2379/tcp --config.workingdir=/
#   --config.user=0:0 --config.stopsignal=SIGINT --author=X
image_config() {
	local name=$1 tag=$2; shift 2
	umoci config --image "$IMAGES_DIR/$name:$tag" "$@"
}

# image_label NAME TAG KEY=VALUE...   set image config labels
image_label() {
	local name=$1 tag=$2; shift 2
	local a=() kv
	for kv in "$@"; do a+=(--config.label="$kv"); done
	image_config "$name" "$tag" "${a[@]}"
}

# make_image NAME TAG SRCDIR [UMOCI-CONFIG-ARGS...]   new image, one layer, config
make_image() {
	local name=$1 tag=$2 src=$3; shift 3
	image_new "$name" "$tag" || return 1
	image_add_layer "$name" "$tag" "$src" || return 1
	if (( $# )); then image_config "$name" "$tag" "$@" || return 1; fi
	image_gc "$name"
}

# image_gc NAME         drop unreferenced blobs from the layout
image_gc() { umoci gc --layout "$IMAGES_DIR/$1"; }

# image_manifest NAME TAG / image_config_json NAME TAG   print the JSON
image_manifest() {
	local lay=$IMAGES_DIR/$1 d
	d=$(jq -r --arg t "$2" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t).digest' \
		"$lay/index.json") || return 1
	[[ -n "$d" ]] || return 1
	cat "$lay/blobs/${d/://}"
}
image_config_json() {
	local d
	d=$(image_manifest "$1" "$2" | jq -r .config.digest) || return 1
	cat "$IMAGES_DIR/$1/blobs/${d/://}"
}

# image_push NAME TAG [DEST]   push with skopeo.  DEST is a docker reference
#   without transport (default: $REGISTRY_ADDR/NAME:TAG).  Uses
#   REGISTRY_USER/REGISTRY_PASSWORD as credentials when set.  Prints DEST.
image_push() {
	local name=$1 tag=$2 dest=${3:-$REGISTRY_ADDR/$1:$2}
	local creds=()
	[[ -n "${REGISTRY_USER:-}" ]] && creds=(--dest-creds="$REGISTRY_USER:$REGISTRY_PASSWORD")
	skopeo --insecure-policy copy -q --dest-tls-verify=false "${creds[@]}" \
		"oci:$IMAGES_DIR/$name:$tag" "docker://$dest" >&2 || return 1
	echo "$dest"
}

# image_add_binary ROOTDIR BINARY [DEST]
#   copy BINARY into ROOTDIR at DEST (default: its own path) with every shared
#   library ldd names, at the paths ldd names (symlinks resolved into files).
image_add_binary() {
	local root=$1 bin=$2 dest=${3:-$2}
	install -D -m 0755 "$bin" "$root$dest" || return 1
	local libs
	if libs=$(ldd "$bin" 2>/dev/null); then
		local l
		for l in $(awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]+ \(/{print $1}' <<<"$libs"); do
			[[ -e "$root$l" ]] && continue
			install -D -m 0755 "$(readlink -f "$l")" "$root$l" || return 1
		done
	fi
	return 0
}

# image_add_busybox ROOTDIR   static busybox at /bin/busybox plus /bin/sh and
#   applet links (busybox-static); also /etc/passwd, /etc/group, /tmp
image_add_busybox() {
	local root=$1 bb
	bb=$(command -v busybox) || { echo "image_add_busybox: no busybox" >&2; return 1; }
	install -D -m 0755 "$bb" "$root/bin/busybox" || return 1
	local a
	for a in sh ash cat echo env ls sleep true false printf nc wget mkdir rm test \
		id hostname ps kill grep sed head tail wc date touch; do
		ln -sf busybox "$root/bin/$a"
	done
	mkdir -p "$root/etc" "$root/tmp" "$root/usr/bin"
	chmod 1777 "$root/tmp"
	[[ -e "$root/etc/passwd" ]] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
	[[ -e "$root/etc/group" ]] || printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# build_busybox_image NAME TAG [SRCDIR] [UMOCI-CONFIG-ARGS...]
#   layer 1: static busybox; layer 2 (optional): SRCDIR.  Entrypoint /bin/sh.
build_busybox_image() {
	local name=$1 tag=$2 extra=${3:-}; shift 2; (( $# )) && shift
	local d
	d=$(mktemp -d "$TEST_TMPDIR/bb.XXXXXX") || return 1
	image_add_busybox "$d" && image_new "$name" "$tag" && image_add_layer "$name" "$tag" "$d" || return 1
	rm -rf "$d"
	if [[ -n "$extra" ]]; then image_add_layer "$name" "$tag" "$extra" || return 1; fi
	image_config "$name" "$tag" --config.entrypoint=/bin/sh \
		--config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.workingdir=/ "$@" || return 1
	image_gc "$name"
}

# etcd_deb               print the path of the cached etcd-server .deb
#   (downloads it with `apt-get download etcd-server` into SYSCTR_TEST_CACHE
#   if missing; parallel runs serialise on a flock; never installs it)
etcd_deb() {
	mkdir -p "$SYSCTR_TEST_CACHE" || return 1
	(
		flock -w 300 9 || exit 1
		deb=$(ls -v "$SYSCTR_TEST_CACHE"/etcd-server_*.deb 2>/dev/null | tail -n1)
		if [[ -z "$deb" ]]; then
			tmp=$(mktemp -d "$SYSCTR_TEST_CACHE/dl.XXXXXX") || exit 1
			# as root apt warns that _apt cannot write here; harmless
			( cd "$tmp" && apt-get download -q etcd-server ) >&2 2>&1 || { rm -rf "$tmp"; exit 1; }
			f=$(ls "$tmp"/etcd-server_*.deb) || { rm -rf "$tmp"; exit 1; }
			mv "$f" "$SYSCTR_TEST_CACHE/" || { rm -rf "$tmp"; exit 1; }
			rm -rf "$tmp"
			deb=$SYSCTR_TEST_CACHE/$(basename "$f")
		fi
		echo "$deb"
	) 9>"$SYSCTR_TEST_CACHE/.lock"
}

# etcd_rootfs DIR        put etcd (from the .deb) + its libs + a minimal /etc into DIR
etcd_rootfs() {
	local root=$1 deb x
	deb=$(etcd_deb) || return 1
	x=$(mktemp -d "$TEST_TMPDIR/etcd-deb.XXXXXX") || return 1
	dpkg-deb -x "$deb" "$x" || return 1
	image_add_binary "$root" "$x/usr/bin/etcd" /usr/bin/etcd || return 1
	rm -rf "$x"
	mkdir -p "$root/etc" "$root/var/lib/etcd" "$root/run" "$root/tmp" "$root/proc" "$root/dev" "$root/sys"
	chmod 1777 "$root/tmp"
	printf 'root:x:0:0:root:/root:/sbin/nologin\netcd:x:998:998:etcd:/var/lib/etcd:/sbin/nologin\n' >"$root/etc/passwd"
	printf 'root:x:0:\netcd:x:998:\n' >"$root/etc/group"
	printf 'hosts: files\n' >"$root/etc/nsswitch.conf"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
}

# build_etcd_image NAME TAG [UMOCI-CONFIG-ARGS...]
#   A native image of Debian's etcd-server: one layer (etcd, libc, ld.so,
#   passwd/group), Entrypoint /usr/bin/etcd, ETCD_DATA_DIR=/var/lib/etcd,
#   ExposedPorts 2379/tcp 2380/tcp.  Extra args go to `umoci config` (e.g.
#   org.sysctr.* labels).  Sets ETCD_IMAGE_BUILD_MS.
build_etcd_image() {
	local name=$1 tag=$2; shift 2
	local t0 d
	t0=$(now_ms)
	d=$(mktemp -d "$TEST_TMPDIR/etcd-root.XXXXXX") || return 1
	etcd_rootfs "$d" || return 1
	image_new "$name" "$tag" && image_add_layer "$name" "$tag" "$d" || return 1
	rm -rf "$d"
	image_config "$name" "$tag" \
		--config.entrypoint=/usr/bin/etcd \
		--config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		--config.env=ETCD_DATA_DIR=/var/lib/etcd \
		--config.exposedports=2379/tcp --config.exposedports=2380/tcp \
		--config.volume=/var/lib/etcd \
		--config.workingdir=/ \
		--config.stopsignal=SIGTERM \
		--config.label=org.opencontainers.image.title=etcd \
		--config.label=org.opencontainers.image.version="$(etcd_version_from_deb)" \
		"$@" || return 1
	image_gc "$name" || return 1
	ETCD_IMAGE_BUILD_MS=$(( $(now_ms) - t0 ))
	export ETCD_IMAGE_BUILD_MS
}

# etcd_version_from_deb  print the etcd-server package version
etcd_version_from_deb() { dpkg-deb -f "$(etcd_deb)" Version; }

# build_atomic_etcd_image NAME TAG
#   The etcd image in Project Atomic's system-container format: the etcd layer
#   plus a second layer with /exports (manifest.json, config.json.template,
#   service.template, tmpfiles.template, hostfs/) from tests/images/atomic-etcd.
#   Variables it uses: forced NAME DESTDIR EXEC_START EXEC_STOP HOST_UID
#   HOST_GID; OS defaults STATE_DIRECTORY RUN_DIRECTORY CONF_DIRECTORY; image
#   defaults (manifest.json) ETCD_PORT ETCD_PEER_PORT ADDTL_MOUNTS ...
build_atomic_etcd_image() {
	local name=$1 tag=$2
	local src=$SYSCTR_TEST_IMAGES_SRC/atomic-etcd d
	[[ -d "$src/exports" ]] || { echo "build_atomic_etcd_image: $src/exports missing" >&2; return 1; }
	d=$(mktemp -d "$TEST_TMPDIR/etcd-root.XXXXXX") || return 1
	etcd_rootfs "$d" || return 1
	image_new "$name" "$tag" && image_add_layer "$name" "$tag" "$d" || return 1
	rm -rf "$d"
	d=$(mktemp -d "$TEST_TMPDIR/exports.XXXXXX") || return 1
	cp -a "$src/exports" "$d/" && image_add_layer "$name" "$tag" "$d" || return 1
	rm -rf "$d"
	image_config "$name" "$tag" \
		--config.entrypoint=/usr/bin/etcd \
		--config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		--config.label=atomic.type=system \
		--config.label=org.opencontainers.image.title=etcd-atomic || return 1
	image_gc "$name"
}

# image_healthcheck NAME TAG JSON   set the image config's Healthcheck (Docker
#   form: {"Test": [...], "Interval": ns, ...}); umoci config has no option for it
image_healthcheck() {
	python3 - "$(image_layout "$1")" "$2" "$3" <<'PY'
import hashlib, json, os, sys
lay, tag, hc = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
idx = json.load(open(os.path.join(lay, "index.json")))
def blob(d): return os.path.join(lay, "blobs", *d.split(":"))
def put(obj):
    data = json.dumps(obj).encode(); d = "sha256:" + hashlib.sha256(data).hexdigest()
    open(blob(d), "wb").write(data); return d, len(data)
for desc in idx["manifests"]:
    if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag:
        continue
    m = json.load(open(blob(desc["digest"])))
    c = json.load(open(blob(m["config"]["digest"])))
    c["config"]["Healthcheck"] = hc
    m["config"]["digest"], m["config"]["size"] = put(c)
    desc["digest"], desc["size"] = put(m)
json.dump(idx, open(os.path.join(lay, "index.json"), "w"))
PY
}

# image_rootfs NAME TAG DIR   unpack an image to DIR (a bundle: DIR/rootfs, DIR/config.json)
image_rootfs() {
	umoci unpack --image "$IMAGES_DIR/$1:$2" "$3" >/dev/null
}

# _atomic_form_layers NAME TAG SRC ROOTDIR   (internal) add ROOTDIR plus
#   tests/images/SRC/rootfs as one layer and tests/images/SRC/exports as the
#   next (files named .keep-in-git left out: they only keep empty
#   directories in git)
_atomic_form_layers() {
	local name=$1 tag=$2 src=$SYSCTR_TEST_IMAGES_SRC/$3 root=$4 d
	[[ -d "$src/exports" ]] || { echo "atomic image: $src/exports missing" >&2; return 1; }
	[[ -d "$src/rootfs" ]] && { cp -a "$src/rootfs/." "$root/" || return 1; }
	image_new "$name" "$tag" && image_add_layer "$name" "$tag" "$root" || return 1
	d=$(mktemp -d "$TEST_TMPDIR/exports.XXXXXX") || return 1
	cp -a "$src/exports" "$d/" || return 1
	find "$d" -name .keep-in-git -delete
	[[ -n "${_ATOMIC_EXTRA_HOSTFS:-}" ]] && { install -D -m 0755 "${_ATOMIC_EXTRA_HOSTFS%%:*}" \
		"$d/exports/hostfs${_ATOMIC_EXTRA_HOSTFS#*:}" || return 1; }
	image_add_layer "$name" "$tag" "$d" || return 1
	rm -rf "$d"
}

# build_atomic_etcd_upstream_image NAME TAG   etcd in the form of the
#   upstream catalogue's etcd (tests/images/atomic-etcd-upstream): Debian's
#   etcd and busybox, and Debian's etcdctl as a 17 MB hostfs file
build_atomic_etcd_upstream_image() {
	local name=$1 tag=$2 d
	d=$(mktemp -d "$TEST_TMPDIR/etcd-up.XXXXXX") || return 1
	etcd_rootfs "$d" && image_add_busybox "$d" || return 1
	_ATOMIC_EXTRA_HOSTFS="$(command -v etcdctl):/usr/local/bin/etcdctl" \
		_atomic_form_layers "$name" "$tag" atomic-etcd-upstream "$d" || return 1
	rm -rf "$d"
	image_config "$name" "$tag" --config.cmd=/usr/bin/etcd-env.sh --config.cmd=/usr/bin/etcd \
		--config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin || return 1
	image_gc "$name"
}

# build_atomic_flannel_upstream_image NAME TAG   flannel's role in the form
#   of the upstream catalogue's flannel (tests/images/atomic-flannel-upstream):
#   busybox and systemd-notify (with its libraries)
build_atomic_flannel_upstream_image() {
	local name=$1 tag=$2 d
	d=$(mktemp -d "$TEST_TMPDIR/flannel-up.XXXXXX") || return 1
	image_add_busybox "$d" && image_add_binary "$d" "$(command -v systemd-notify)" /usr/bin/systemd-notify || return 1
	_atomic_form_layers "$name" "$tag" atomic-flannel-upstream "$d" || return 1
	rm -rf "$d"
	image_config "$name" "$tag" --config.cmd=/usr/bin/flanneld-run.sh \
		--config.label=atomic.type=system || return 1
	image_gc "$name"
}
