#!/bin/bash
# How many images of Project Atomic's system-container catalogue install
# unchanged: each of the 18 image directories of a checkout of
# projectatomic/atomic-system-containers becomes an OCI image whose /exports
# holds that directory's templates and manifest byte for byte (checked with
# cmp after `umoci unpack`), with busybox as a stand-in payload and small
# stand-ins for the host files upstream copies from packages at build time;
# each is installed with `sysctr --root=FRESH install --system --privileged`.
# Prints one line per image and "N of 18 install".
#
#   sudo bash scripts/catalogue.sh CATALOGUE-CHECKOUT [BUILDDIR]
#
# The catalogue is not part of this tree (nor of CI, which has no network):
# clone it, or `git archive` a mirror, and pass its directory. BUILDDIR
# defaults to build/ (meson, with sysctr-shim installed at its prefix).
# Work files go to a temporary directory, removed at the end.
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UP=$(realpath "${1:?usage: catalogue.sh CATALOGUE-CHECKOUT [BUILDDIR]}")
BUILDDIR=$(realpath "${2:-$top/build}")
SYSCTR=$BUILDDIR/src/cli/sysctr
[[ -d $UP/etcd && -d $UP/flannel ]] || { echo "catalogue.sh: $UP is not a checkout of atomic-system-containers" >&2; exit 1; }
[[ -x $SYSCTR ]] || { echo "catalogue.sh: no sysctr at $SYSCTR (build first)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "catalogue.sh: run as root (installs keep owners)" >&2; exit 1; }

W=$(mktemp -d /tmp/sysctr-catalogue.XXXXXX)
trap 'rm -rf "$W"' EXIT
export TEST_TMPDIR=$W/tmp IMAGES_DIR=$W/oci SYSCTR_SRCDIR=$top
mkdir -p "$TEST_TMPDIR" "$IMAGES_DIR"
. "$top/tests/lib/images.sh"

IMAGES="etcd flannel hello-world kubernetes-apiserver kubernetes-controller-manager kubernetes-scheduler
kubernetes-proxy kubernetes-kubelet kubeadm docker-centos docker-fedora buildah-fedora net-snmp
open-vm-tools-centos ovirt-guest-agent-centos ovirt-guest-agent-fedora qemu-guest-agent azure"
EXPORTS="config.json.template service.template tmpfiles.template manifest.json"

# a stand-in payload: a script that sleeps
script() { mkdir -p "$(dirname "$1")"; printf '#!/bin/sh\nexec sleep 2147483647\n' >"$1"; chmod 0755 "$1"; }
# a stand-in for a host file upstream copies from a package at build time
standin() { mkdir -p "$(dirname "$1")"; printf '# stand-in for %s\n' "${1##*/hostfs}" >"$1"; chmod "${2:-0644}" "$1"; }
exports_dir() { if [[ $1 == azure ]]; then echo "$UP/azure/exports"; else echo "$UP/$1"; fi; }

build() {
	local n=$1
	local r=$TEST_TMPDIR/$n/root x=$TEST_TMPDIR/$n/x f cfg=() u
	mkdir -p "$r" "$x/exports"
	image_add_busybox "$r" || return 1
	for f in $EXPORTS; do [[ -f $(exports_dir "$n")/$f ]] && cp -p "$(exports_dir "$n")/$f" "$x/exports/$f"; done
	local h=$x/exports/hostfs k=--config.label=atomic.type=system
	case $n in
	etcd) script "$r/usr/bin/etcd-env.sh"; script "$r/usr/bin/etcd"
		standin "$h/usr/local/bin/etcdctl" 0755; standin "$h/etc/etcd/etcd.conf"
		cfg=(--config.cmd=/usr/bin/etcd-env.sh --config.cmd=/usr/bin/etcd) ;;
	flannel) script "$r/usr/bin/flanneld-run.sh"; script "$r/usr/bin/flanneld"
		standin "$h/etc/sysconfig/flanneld"; mkdir -p "$h/etc/flanneld"
		cfg=(--config.cmd=/usr/bin/flanneld-run.sh "$k") ;;
	hello-world) script "$r/usr/bin/run.sh"; script "$r/usr/bin/greet.sh"; cfg=("$k") ;;
	kubernetes-apiserver|kubernetes-controller-manager|kubernetes-scheduler|kubernetes-proxy)
		local c=${n#kubernetes-}
		script "$r/usr/bin/kube-$c-docker.sh"; standin "$h/etc/kubernetes/config"
		[[ $c == apiserver ]] && standin "$h/usr/local/bin/kubectl" 0755
		standin "$h/etc/kubernetes/$c"
		cfg=(--config.entrypoint="/usr/bin/kube-$c-docker.sh" "$k") ;;
	kubernetes-kubelet) script "$r/usr/bin/kubelet-docker.sh"; mkdir -p "$h/etc/cni/net.d"
		standin "$h/etc/kubernetes/config"; standin "$h/etc/kubernetes/kubelet"
		cfg=(--config.entrypoint=/usr/bin/kubelet-docker.sh "$k") ;;
	kubeadm) script "$r/usr/bin/launch.sh"; mkdir -p "$r/var/lib/kubelet" "$h/etc/cni" "$h/etc/kubernetes/pki"
		standin "$h/usr/local/bin/kubectl" 0755; standin "$h/usr/local/bin/kubeadm" 0755
		standin "$h/etc/kubernetes/kubeadm-env"
		cfg=(--config.entrypoint=/usr/bin/launch.sh "$k") ;;
	docker-centos|docker-fedora) script "$r/usr/bin/init.sh"; script "$r/usr/bin/shim.sh"; mkdir -p "$r/usr/lib/modules"
		standin "$h/etc/docker/container-daemon.json"; standin "$h/etc/oci-umount.conf"
		cfg=(--config.cmd=/usr/bin/init.sh "$k") ;;
	buildah-fedora) script "$r/usr/bin/buildah"; mkdir -p "$r/host"
		cfg=(--config.entrypoint=/usr/bin/buildah --config.label=atomic.run=once "$k") ;;
	net-snmp) script "$r/usr/bin/run.sh"; mkdir -p "$h/var/lib/net-snmp"
		for f in sysconfig/snmpd sysconfig/snmptrapd snmp/snmpd.conf snmp/snmptrapd.conf; do standin "$h/etc/$f"; done
		cfg=(--config.cmd=/usr/bin/run.sh "$k") ;;
	open-vm-tools-centos) script "$r/usr/bin/vmtoolsd"; cfg=(--config.cmd=/usr/bin/vmtoolsd) ;;
	ovirt-guest-agent-*|qemu-guest-agent) script "$r/usr/bin/run.sh"; script "$r/usr/bin/qemu-ga"
		cfg=(--config.cmd=/usr/bin/run.sh) ;;
	azure) script "$r/usr/bin/python"; script "$r/usr/sbin/waagent"; cfg=("$k") ;;
	esac
	image_new "$n" v1 && image_add_layer "$n" v1 "$r" && image_add_layer "$n" v1 "$x" &&
		image_config "$n" v1 --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			--config.workingdir=/ "${cfg[@]}" && image_gc "$n" || return 1
	# the image carries the upstream files byte for byte
	u=$TEST_TMPDIR/$n/unpacked
	umoci unpack --image "$IMAGES_DIR/$n:v1" "$u" >/dev/null || return 1
	for f in $EXPORTS; do
		[[ -f $(exports_dir "$n")/$f ]] || continue
		cmp -s "$(exports_dir "$n")/$f" "$u/rootfs/exports/$f" || { echo "$n: /exports/$f differs from upstream"; return 1; }
	done
}

ok=0
for n in $IMAGES; do
	if ! build "$n" >"$W/build-$n.log" 2>&1; then
		printf '%-30s BUILD FAILED: %s\n' "$n" "$(tail -n1 "$W/build-$n.log")"; continue
	fi
	mkdir -p "$W/root-$n"
	"$SYSCTR" --root="$W/root-$n" install --system --privileged --name="$n" "oci:$IMAGES_DIR/$n:v1" \
		>"$W/out" 2>"$W/err"; rc=$?
	if (( rc == 0 )); then
		ok=$((ok + 1)); printf '%-30s installed (%s warning(s))\n' "$n" "$(grep -c '^warning' "$W/err")"
	else
		printf '%-30s refused: %s\n' "$n" "$(grep -v -e '^warning' -e '^  ' "$W/err" | head -n1)"
	fi
done
echo "$ok of 18 install"
