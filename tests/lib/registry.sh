# shellcheck shell=bash
# registry.sh — per-run TCP ports and a real loopback registry for live tests.
#
# Needs libtest.sh sourced first (cleanup_push, wait_until, TEST_TMPDIR).
#
# Ports: the booted systemd of nspawn.sh shares the host network namespace, so
# every port a test uses (registry, etcd client/peer, sockets) is taken from
# alloc_port.  A port is handed out only if
#   1. a lock file /run/sysctr-test-ports/PORT could be created atomically
#      (noclobber; the file holds "PID RUNID"; locks whose PID is dead are
#      reclaimed), and
#   2. python3 can bind it right now on 0.0.0.0 and :: (which also fails when
#      anything listens on 127.0.0.1:PORT).
# Ports come from 20000–32767, below the kernel's ephemeral range (32768+ here),
# so outgoing connections never steal them between allocation and use.
# Locks are released by the cleanup registry at exit (release_my_ports, which
# is registered when this file is sourced, so alloc_port works in $(...)).
#
# Registry: Debian's docker-registry (distribution 2.8) with its own config and
# storage under TEST_TMPDIR.  The packaged docker-registry.service is never
# touched (on the host it is not running: no systemd; in the booted systemd it
# is masked by nspawn.sh).  Its config must set storage.delete and an http
# secret (otherwise it logs a warning per start) and must not inherit the
# packaged htpasswd auth section (/etc/docker/registry is not an htpasswd file).

[[ -n "${_REGISTRY_SH:-}" ]] && return 0
_REGISTRY_SH=1

: "${SYSCTR_TEST_PORTDIR:=/run/sysctr-test-ports}"
: "${DOCKER_REGISTRY_BIN:=/usr/bin/docker-registry}"
_PORT_LO=20000
_PORT_HI=32767

# release_my_ports      drop every port lock this run holds
release_my_ports() {
	local lock owner rid
	for lock in "$SYSCTR_TEST_PORTDIR"/[0-9]*; do
		[[ -f "$lock" ]] || continue
		read -r owner rid <"$lock" 2>/dev/null || continue
		[[ "$owner" == "$$" && "$rid" == "$TEST_RUN_ID" ]] && rm -f "$lock"
	done
	return 0
}
cleanup_push release_my_ports
reaper_add "grep -lx '$$ $TEST_RUN_ID' $SYSCTR_TEST_PORTDIR/[0-9]* 2>/dev/null | xargs -r rm -f"

_port_bindable() {
	python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
p = int(sys.argv[1])
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
    except OSError:
        continue
    try:
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, p))
        s.listen(1)
    except OSError:
        sys.exit(1)
    finally:
        s.close()
    # UDP too, for tests that want it
    u = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        u.bind((addr, p))
    except OSError:
        sys.exit(1)
    finally:
        u.close()
EOF
}

# alloc_port            print one free TCP port, locked for this run until exit
alloc_port() {
	mkdir -p "$SYSCTR_TEST_PORTDIR" || return 1
	local tries=0 port lock owner
	while (( tries++ < 200 )); do
		port=$(( _PORT_LO + RANDOM % (_PORT_HI - _PORT_LO + 1) ))
		lock=$SYSCTR_TEST_PORTDIR/$port
		if ! ( set -o noclobber; echo "$$ $TEST_RUN_ID" >"$lock" ) 2>/dev/null; then
			# held: reclaim only if its owner is gone
			read -r owner _ <"$lock" 2>/dev/null
			if [[ -n "$owner" ]] && ! kill -0 "$owner" 2>/dev/null; then
				# race-free reclaim: rename the stale lock away first
				mv -f "$lock" "$lock.stale.$$" 2>/dev/null && rm -f "$lock.stale.$$"
			fi
			continue
		fi
		if _port_bindable "$port"; then
			echo "$port"
			return 0
		fi
		rm -f "$lock"
	done
	echo "alloc_port: no free port found" >&2
	return 1
}

# release_port PORT     drop our lock on PORT (only if we own it)
release_port() {
	local lock=$SYSCTR_TEST_PORTDIR/$1 owner rid
	read -r owner rid <"$lock" 2>/dev/null || return 0
	[[ "$owner" == "$$" && "$rid" == "$TEST_RUN_ID" ]] && rm -f "$lock"
	return 0
}

# registry_start [--auth USER:PASSWORD] [--id ID]
#   Start a registry on 127.0.0.1:<alloc_port>.  Waits until /v2/ answers.
#   Sets (and exports):
#     REGISTRY_PORT REGISTRY_ADDR (127.0.0.1:PORT) REGISTRY_URL (http://ADDR)
#     REGISTRY_PID REGISTRY_DIR (config, storage, log)
#     REGISTRY_USER REGISTRY_PASSWORD REGISTRY_AUTHFILE (auth variant only; the
#       authfile is a containers-auth.json usable with skopeo --authfile and
#       sysctr --authfile)
#   The same values are saved as REGISTRY_<ID>_* when --id is given, so a test
#   can run several (e.g. --id open and --id auth) and switch between them with
#   registry_use ID.  The globals always describe the LAST one started.
#   Registers registry_stop.
registry_start() {
	local auth="" id=""
	while (( $# )); do
		case $1 in
		--auth) auth=$2; shift 2 ;;
		--id) id=$2; shift 2 ;;
		*) echo "registry_start: unknown argument $1" >&2; return 2 ;;
		esac
	done
	local port dir
	port=$(alloc_port) || return 1
	dir=$(mktemp -d "$TEST_TMPDIR/registry.XXXXXX") || return 1
	mkdir -p "$dir/storage"
	{
		cat <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: sysctr-test-$TEST_RUN_ID
  headers:
    X-Content-Type-Options: [nosniff]
EOF
		if [[ -n "$auth" ]]; then
			cat <<EOF
auth:
  htpasswd:
    realm: sysctr-test
    path: $dir/htpasswd
EOF
		fi
	} >"$dir/config.yml"
	REGISTRY_USER="" REGISTRY_PASSWORD="" REGISTRY_AUTHFILE=""
	if [[ -n "$auth" ]]; then
		REGISTRY_USER=${auth%%:*} REGISTRY_PASSWORD=${auth#*:}
		htpasswd -Bbc "$dir/htpasswd" "$REGISTRY_USER" "$REGISTRY_PASSWORD" >/dev/null 2>&1 || {
			echo "registry_start: htpasswd failed" >&2; return 1; }
		REGISTRY_AUTHFILE=$dir/auth.json
		printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$port" \
			"$(printf '%s' "$auth" | base64 -w0)" >"$REGISTRY_AUTHFILE"
	fi
	"$DOCKER_REGISTRY_BIN" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$dir/pid"
	cleanup_push "registry_stop $dir"
	reaper_add "grep -q docker-registry /proc/$pid/cmdline 2>/dev/null && kill -TERM $pid"
	if ! wait_until 20 _registry_answers "$port"; then
		echo "registry_start: registry on port $port did not come up" >&2
		tail -n 20 "$dir/registry.log" >&2
		return 1
	fi
	REGISTRY_PORT=$port REGISTRY_ADDR=127.0.0.1:$port REGISTRY_URL=http://127.0.0.1:$port
	REGISTRY_PID=$pid REGISTRY_DIR=$dir
	export REGISTRY_PORT REGISTRY_ADDR REGISTRY_URL REGISTRY_PID REGISTRY_DIR \
		REGISTRY_USER REGISTRY_PASSWORD REGISTRY_AUTHFILE
	if [[ -n "$id" ]]; then
		local v
		for v in PORT ADDR URL PID DIR USER PASSWORD AUTHFILE; do
			eval "export REGISTRY_${id}_$v=\"\$REGISTRY_$v\""
		done
	fi
	return 0
}

# registry_use ID        make the registry started with --id ID the current one
#   (REGISTRY_* globals, which image_push and registry_* use by default)
registry_use() {
	local v n
	for v in PORT ADDR URL PID DIR USER PASSWORD AUTHFILE; do
		n=REGISTRY_${1}_$v
		[[ -n "${!n+x}" ]] || { echo "registry_use: no registry with id $1" >&2; return 1; }
		printf -v "REGISTRY_$v" '%s' "${!n}"
		export "REGISTRY_$v"
	done
}

_registry_answers() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/v2/") || return 1
	[[ "$code" == 200 || "$code" == 401 ]]
}

# registry_stop [DIR]   stop the registry started in DIR (default: the last one)
registry_stop() {
	local dir=${1:-$REGISTRY_DIR} pid
	[[ -n "$dir" && -r "$dir/pid" ]] || return 0
	read -r pid <"$dir/pid"
	kill_wait "$pid" 10
	rm -f "$dir/pid"
}

# registry_curl PATH [curl args...]   GET $REGISTRY_URL/PATH (with credentials if any)
registry_curl() {
	local path=$1; shift
	local cred=()
	[[ -n "${REGISTRY_USER:-}" ]] && cred=(-u "$REGISTRY_USER:$REGISTRY_PASSWORD")
	curl -fsS --max-time 10 "${cred[@]}" "$@" "$REGISTRY_URL/${path#/}"
}

# registry_tags REPO    print the repo's tags, one per line, sorted
registry_tags() {
	registry_curl "/v2/$1/tags/list" | jq -r '.tags[]?' | sort
}

# registry_catalog      print the repositories, one per line
registry_catalog() {
	registry_curl "/v2/_catalog" | jq -r '.repositories[]?'
}

# registry_digest REPO TAG   print the manifest digest (Docker-Content-Digest)
registry_digest() {
	registry_curl "/v2/$1/manifests/$2" -I \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' |
		tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}
