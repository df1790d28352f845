#!/bin/sh
# etcd-env.sh COMMAND...: every ETCD_* variable that the container's
# environment leaves empty takes its value from /etc/etcd/etcd.conf (the
# host's $CONF_DIRECTORY/$NAME, bound read-only); those still empty are
# unset, so that etcd uses its own defaults; then COMMAND runs.
if [ -r /etc/etcd/etcd.conf ]; then
	while IFS='=' read -r key value; do
		case $key in
		ETCD_*)
			eval "current=\${$key:-}"
			value=${value#\"}; value=${value%\"}
			[ -n "$current" ] || export "$key=$value"
			;;
		esac
	done </etc/etcd/etcd.conf
fi
for assignment in $(env | grep '^ETCD_[A-Z_]*=$'); do
	unset "${assignment%=}"
done
exec "$@"
