#!/bin/sh
# flanneld-run.sh: the part flannel plays on an Atomic host, in miniature:
# writes its network configuration into etcd, leaves /run/flannel/subnet.env
# and a drop-in for docker.service on the host (through its binds), then
# tells systemd it is ready with systemd-notify (NotifyAccess=all: the
# notification comes from a process other than the main one) and stays up.
set -u
key=$FLANNELD_ETCD_PREFIX/config
value='{"Network": "10.1.0.0/16"}'
k64=$(printf %s "$key" | busybox base64 | tr -d '\n')
v64=$(printf %s "$value" | busybox base64 | tr -d '\n')
if ! out=$(busybox wget -q -O - --header 'Content-Type: application/json' \
	--post-data "{\"key\":\"$k64\",\"value\":\"$v64\"}" "$FLANNELD_ETCD_ENDPOINTS/v3/kv/put" 2>&1); then
	echo "flanneld-run: FAILED to write to etcd at $FLANNELD_ETCD_ENDPOINTS: $out"
	exit 1
fi
echo "flanneld-run: wrote $key to $FLANNELD_ETCD_ENDPOINTS"
printf 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.7.1/24\n' >/run/flannel/subnet.env
printf '[Service]\nEnvironment=FLANNEL_SUBNET=10.1.7.1/24\n' >"/etc/systemd/system/docker.service.d/$NAME.conf"
systemd-notify --ready || { echo "flanneld-run: systemd-notify failed"; exit 1; }
echo "flanneld-run: ready"
exec sleep 2147483647
