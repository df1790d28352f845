#!/bin/bash
# bench/run.sh — sysctr side by side with the tools users would pick instead
# (issue 7).  One command, run as root from anywhere:
#
#   bash bench/run.sh
#
# It builds sysctr (meson, into $BENCH_BUILDDIR, installed to $BENCH_PREFIX),
# builds its own inputs (a ~300 MB / ~17k file, 5-layer image from Debian files
# on this machine, and a v2 that changes one 10 MiB file), starts a loopback
# registry (tests/lib/registry.sh), runs B1..B11 and writes
#   $BENCH_OUT/results.tsv   one line per measurement (seconds / bytes)
#   $BENCH_OUT/RESULTS.md    the table (bench/report.py), pasted into BENCHMARKS.md
#   $BENCH_OUT/run.log       everything the tools printed
# Default BENCH_OUT: bench/results.  Timing: hyperfine (medians, min-max,
# warm-up runs).  Every peer runs in the same run; a peer that cannot run here
# is reported as "not measured: WHY" (and in RESULTS.md).
#
# Env: BENCH_BUILDDIR (/tmp/bench-build-head) BENCH_PREFIX (/tmp/bench-prefix)
#      BENCH_OUT (bench/results) BENCH_QUICK=1 (fewer runs, for trying it out)
#      BENCH_SKIP="B6 B5" (skip sections) BENCH_N_MAX (50, for B9)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
: "${BENCH_BUILDDIR:=/tmp/bench-build-head}"
: "${BENCH_PREFIX:=/tmp/bench-prefix}"
: "${BENCH_OUT:=$BENCH_DIR/results}"
: "${BENCH_QUICK:=}"
: "${BENCH_SKIP:=}"
: "${BENCH_N_MAX:=50}"

[[ $(id -u) == 0 ]] || { echo "bench/run.sh: needs root" >&2; exit 1; }
mkdir -p "$BENCH_OUT"
RES=$BENCH_OUT/results.tsv
LOG=$BENCH_OUT/run.log
: >"$RES"
: >"$LOG"
T_START=$(date +%s)

# shellcheck source=../tests/lib/libtest.sh
. "$SRCDIR/tests/lib/libtest.sh"
# shellcheck source=../tests/lib/registry.sh
. "$SRCDIR/tests/lib/registry.sh"
# shellcheck source=../tests/lib/images.sh
. "$SRCDIR/tests/lib/images.sh"
# shellcheck source=lib-inputs.sh
. "$BENCH_DIR/lib-inputs.sh"

say() { printf '%s\n' "$*" | tee -a "$LOG"; }
# rec KEY VALUE [MIN MAX N]   one result line (times in seconds, sizes in bytes)
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" "${4:-}" "${5:-}" >>"$RES"; }
# notrun KEY WHY
notrun() { say "not measured: $1: $2"; printf '%s\tNA\t\t\t\t%s\n' "$1" "$2" >>"$RES"; }
skipped() { [[ " $BENCH_SKIP " == *" $1 "* ]]; }
runs() { if [[ -n "$BENCH_QUICK" ]]; then echo "${2:-2}"; else echo "$1"; fi; }

# hf KEY RUNS WARMUP PREPARE CMD   time CMD with hyperfine (bash), record median/min/max
#   PREPARE may be "" (none).  A failing CMD records NA with its last output.
hf() {
	local key=$1 n=$2 w=$3 prep=$4 cmd=$5 j=$TEST_TMPDIR/hf-$1.json out
	local pa=()
	[[ -n "$prep" ]] && pa=(--prepare "$prep")
	say "[$key] $cmd"
	# the first (probe) run decides whether the peer runs here, and counts as a warm-up
	[[ -n "$prep" ]] && bash -c "$prep" >/dev/null 2>&1
	if ! out=$(bash -c "$cmd" 2>&1 </dev/null); then
		notrun "$key" "$(tail -n 2 <<<"$out" | tr '\n\t' '  ')"
		return 1
	fi
	(( w > 0 )) && w=$((w - 1))
	if ! hyperfine --shell=bash --style=basic --warmup "$w" --runs "$n" "${pa[@]}" \
		--export-json "$j" -n "$key" "$cmd" >>"$LOG" 2>&1; then
		notrun "$key" "hyperfine failed (see run.log)"
		return 1
	fi
	local line
	line=$(jq -r '.results[0] | [.median, .min, .max, (.times|length)] | @tsv' "$j")
	# shellcheck disable=SC2086
	rec "$key" $line
	say "    median $(cut -f1 <<<"$line") s (min $(cut -f2 <<<"$line"), max $(cut -f3 <<<"$line"), n $(cut -f4 <<<"$line"))"
}

# Round robin for the long measurements: this machine may be shared (other
# jobs come and go), so instead of one block of runs per peer, every round
# runs every peer once (rotating the order) and each peer's median is taken
# over rounds.  Wall time and CPU time (user+sys of the whole process tree).
#   rr_add KEY PREPARE CMD   (a probe run decides whether it can run here)
#   rr_run ROUNDS WARMUP     run and record KEY (wall) and KEY.cpu
RR_KEYS=() RR_PREP=() RR_CMD=()
rr_add() {
	local out
	say "[$1] $3"
	bash -c "$2" >/dev/null 2>&1
	if ! out=$(bash -c "$3" 2>&1 </dev/null); then
		notrun "$1" "$(tail -n 2 <<<"$out" | tr '\n\t' '  ')"
		return 1
	fi
	RR_KEYS+=("$1") RR_PREP+=("$2") RR_CMD+=("$3")
}
rr_run() {
	local rounds=$1 warm=$2 r i k n=${#RR_KEYS[@]} f=$TEST_TMPDIR/rr.times t
	: >"$f"
	for (( r = 0; r < rounds + warm; r++ )); do
		for (( k = 0; k < n; k++ )); do
			i=$(( (k + r) % n ))
			bash -c "${RR_PREP[i]}" >/dev/null 2>&1
			/usr/bin/time -f "%e %U %S" -o "$TEST_TMPDIR/rr.one" bash -c "${RR_CMD[i]}" >/dev/null 2>>"$LOG" </dev/null ||
				say "    ${RR_KEYS[i]}: run $r failed"
			(( r >= warm )) && echo "${RR_KEYS[i]} $(cat "$TEST_TMPDIR/rr.one")" >>"$f"
		done
	done
	for (( i = 0; i < n; i++ )); do
		for t in wall cpu; do
			line=$(awk -v k="${RR_KEYS[i]}" -v t=$t '$1==k { print (t=="wall") ? $2 : $3+$4 }' "$f" | sort -g |
				awk '{v[NR]=$1} END { if (NR) { m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%s\t%s\t%s\t%s", m, v[1], v[NR], NR } }')
			[[ -n "$line" ]] || continue
			if [[ $t == wall ]]; then
				rec "${RR_KEYS[i]}" $line
				say "    ${RR_KEYS[i]}: median $(cut -f1 <<<"$line") s (min $(cut -f2 <<<"$line"), max $(cut -f3 <<<"$line"), n $(cut -f4 <<<"$line"))"
			else
				rec "${RR_KEYS[i]}.cpu" $line
			fi
		done
	done
	RR_KEYS=() RR_PREP=() RR_CMD=()
}
load() { rec "load.$1" "$(cut -d' ' -f1 /proc/loadavg)"; }
# aside DIR: shell code that renames DIR into $W/trash (no inode is freed
# right before a timed run: on this ext4, freshly freed inodes make the next
# inode allocations scan (ext4 recently_deleted()), which would tax whoever
# runs next; measured here: sysctr install 0.4 s -> 1.5 s after a big rm -rf).
# So nothing big is deleted until the run is over: the trash (several GB)
# goes with TEST_TMPDIR at exit.
aside() { echo "mkdir -p $W/trash && { [ ! -e $1 ] || mv $1 $W/trash/\$(date +%s%N); }"; }
trash() { local d; for d in "$@"; do [[ -e $d ]] && bash -c "$(aside "$d")"; done; sync; }

dub() { du -s --block-size=1 "$@" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }   # disk bytes, hardlinks once
reglines() { grep -c '^127\.0\.0\.1 - ' "$REGISTRY_DIR/registry.log"; }
# regsince N   requests and response bytes in the access log after line N
regsince() {
	grep '^127\.0\.0\.1 - ' "$REGISTRY_DIR/registry.log" | tail -n +"$(($1 + 1))" |
		awk '{ n++; if ($10 ~ /^[0-9]+$/) b += $10 } END { print n+0, b+0 }'
}

# ---------------------------------------------------------------- build ----
# Built from a snapshot of the committed HEAD (git archive), so the numbers
# belong to a commit and half-edited files in the work tree cannot break or
# skew the run.  BENCH_WORKTREE=1 builds the work tree as it is instead.
if [[ -n "${BENCH_WORKTREE:-}" ]]; then
	BUILD_SRC=$SRCDIR
	BENCH_COMMIT="$(git -C "$SRCDIR" rev-parse --short HEAD)+worktree"
else
	BUILD_SRC=$BENCH_BUILDDIR.src
	BENCH_COMMIT=$(git -C "$SRCDIR" rev-parse --short HEAD)
	rm -rf "$BUILD_SRC" && mkdir -p "$BUILD_SRC"
	git -C "$SRCDIR" archive HEAD | tar -x -C "$BUILD_SRC" || { echo "git archive failed" >&2; exit 1; }
fi
say "== sysctr build of $BENCH_COMMIT ($BUILD_SRC -> $BENCH_BUILDDIR -> $BENCH_PREFIX)"
if [[ -f "$BENCH_BUILDDIR/build.ninja" ]] && ! grep -qF "$BUILD_SRC" "$BENCH_BUILDDIR/build.ninja"; then
	rm -rf "$BENCH_BUILDDIR"   # configured for another source dir
fi
if [[ ! -f "$BENCH_BUILDDIR/build.ninja" ]]; then
	meson setup "$BENCH_BUILDDIR" "$BUILD_SRC" --prefix="$BENCH_PREFIX" >>"$LOG" 2>&1 ||
		{ say "meson setup failed (see $LOG)"; exit 1; }
fi
ninja -C "$BENCH_BUILDDIR" install >>"$LOG" 2>&1 || { say "build failed (see $LOG)"; exit 1; }
SYSCTR=$BENCH_PREFIX/bin/sysctr
say "sysctr $BENCH_COMMIT buildtype=$(meson introspect --buildoptions "$BENCH_BUILDDIR" 2>/dev/null | jq -r '.[]|select(.name=="buildtype").value')"

# ---------------------------------------------------------------- machine --
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit: $BENCH_COMMIT (built $(meson introspect --buildoptions "$BENCH_BUILDDIR" 2>/dev/null | jq -r '.[]|select(.name=="buildtype").value'))"
	echo "cpu: $(nproc) x $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
	echo "ram: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel: $(uname -r)"
	echo "disk: $(df -T "$TEST_TMPDIR" | awk 'NR==2{print $1" ("$2")"}'), $(lsblk -dno ROTA "$(df "$TEST_TMPDIR" | awk 'NR==2{print $1}')" 2>/dev/null | sed 's/1/rotational/;s/0/non-rotational/')"
	echo "tools: $(skopeo --version), umoci $(umoci --version | awk '{print $3}'), $(podman --version), $(runc --version | head -n1), $(crun --version | head -n1), bwrap $(bwrap --version | awk '{print $2}'), $(hyperfine --version), $(curl --version | head -n1 | cut -d' ' -f1-2), $(ostree --version | awk '/Version/{print "libostree "$2}' | tr -d \"\')"
} >"$BENCH_OUT/machine.txt"
cat "$BENCH_OUT/machine.txt" | tee -a "$LOG"

# ---------------------------------------------------------------- inputs ---
say "== inputs"
registry_start >>"$LOG" 2>&1 || { say "registry did not start"; exit 1; }
t0=$(now_ms)
build_big_image big >>"$LOG" 2>&1 || { say "building the image failed (see $LOG)"; exit 1; }
build_small_image small >>"$LOG" 2>&1 || { say "building the small image failed"; exit 1; }
for t in v1 v2; do image_push big $t >>"$LOG" 2>&1 || { say "push failed"; exit 1; }; done
image_push small v1 >>"$LOG" 2>&1 || { say "push failed"; exit 1; }
read -r L COMP UNP FILES < <(image_stats big v1)
rec input.layers "$L"; rec input.compressed "$COMP"; rec input.unpacked "$UNP"; rec input.files "$FILES"
rec input.build_s "$(( $(now_ms) - t0 ))e-3"
say "image big: $L layers, $((COMP / 1048576)) MiB compressed, $((UNP / 1048576)) MiB unpacked, $FILES files (built+pushed in $(( ($(now_ms) - t0) / 1000 )) s)"
REG=$REGISTRY_ADDR
IMG1=$REG/big:v1
IMG2=$REG/big:v2
MANIFEST1=$(image_manifest big v1)
LAYERS1=$(jq -r '.layers[].digest' <<<"$MANIFEST1")

W=$TEST_TMPDIR/w   # work area (same file system as the stores)
mkdir -p "$W"
PODMAN_DRIVER=overlay
podman_cmd() { echo "podman --root $1/root --runroot $1/run --storage-driver $PODMAN_DRIVER --events-backend none --cgroup-manager cgroupfs"; }
# Which podman storage driver works here: overlay (native) first, vfs otherwise.
mkdir -p "$W/pmprobe"
if ! $(podman_cmd "$W/pmprobe") pull -q --tls-verify=false "$REG/small:v1" >>"$LOG" 2>&1; then
	PODMAN_DRIVER=vfs
	rm -rf "$W/pmprobe"; mkdir -p "$W/pmprobe"
	$(podman_cmd "$W/pmprobe") pull -q --tls-verify=false "$REG/small:v1" >>"$LOG" 2>&1 || PODMAN_DRIVER=""
fi
rm -rf "$W/pmprobe"
say "podman storage driver: ${PODMAN_DRIVER:-none works}"
echo "podman_driver: ${PODMAN_DRIVER:-none}" >>"$BENCH_OUT/machine.txt"
SK="skopeo --insecure-policy copy -q --src-tls-verify=false"
R1=$W/r1            # sysctr root used after B1 (holds v1)
SKD=$W/skopeo       # skopeo OCI layout used after B1 (holds v1)
PMD=$W/podman       # podman storage used after B1 (holds v1)

# ------------------------------------------------------------------- B1 ---
if ! skipped B1; then
	say "== B1 cold pull of $IMG1"
	load B1.start
	rr_add B1.sysctr "$(aside $W/b1s) && mkdir -p $W/b1s && sync" \
		"$SYSCTR --root=$W/b1s pull --tls-verify=false --quiet $IMG1"
	rr_add B1.skopeo_umoci "$(aside $W/b1k) && mkdir -p $W/b1k && sync" \
		"$SK docker://$IMG1 oci:$W/b1k/oci:v1 && umoci unpack --image $W/b1k/oci:v1 $W/b1k/bundle >/dev/null"
	rr_add B1.skopeo "$(aside $W/b1k) && mkdir -p $W/b1k && sync" \
		"$SK docker://$IMG1 oci:$W/b1k/oci:v1"
	if [[ -n "$PODMAN_DRIVER" ]]; then
		rr_add B1.podman "$(aside $W/b1p) && mkdir -p $W/b1p && sync" \
			"$(podman_cmd "$W/b1p") pull -q --tls-verify=false $IMG1 >/dev/null"
	else
		notrun B1.podman "no podman storage driver works here"
	fi
	urls=""
	for d in $LAYERS1; do urls+=" $REGISTRY_URL/v2/big/blobs/$d"; done
	rr_add B1.floor "$(aside $W/b1f) && mkdir -p $W/b1f && sync" \
		"set -o pipefail; for u in $urls; do curl -fsS \$u | tar -xzf - -C $W/b1f || exit 1; done"
	rr_add B1.floor_par "$(aside $W/b1f) && mkdir -p $W/b1f && sync" \
		"set -o pipefail; i=0; for u in $urls; do i=\$((i+1)); mkdir -p $W/b1f/\$i; (curl -fsS \$u | tar -xzf - -C $W/b1f/\$i) & done; wait"
	# raw import cost of the same data into OSTree without sysctr (reference point)
	mkdir -p "$W/otar"
	for d in $LAYERS1; do gzip -dc "$IMAGES_DIR/big/blobs/${d/://}" >"$W/otar/${d#sha256:}.tar"; done
	rr_add B1.ostree_commit_tar "$(aside $W/orepo) && ostree --repo=$W/orepo init --mode=bare && sync" \
		"for t in $W/otar/*.tar; do ostree --repo=$W/orepo commit --branch=l/\$(basename \$t .tar) --tree=tar=\$t --tar-autocreate-parents --no-xattrs >/dev/null || exit 1; done"
	rr_run "$(runs 3 1)" 0
	load B1.end
	trash "$W/b1s" "$W/b1k" "$W/b1p" "$W/b1f" "$W/otar" "$W/orepo"
fi

# stores holding v1 for B2-B4 (one instrumented cold pull each: requests, bytes)
mkdir -p "$R1" "$SKD" "$PMD"
n0=$(reglines)
SYSCTR_REPORT_REQUESTS=1 $SYSCTR --root="$R1" pull --tls-verify=false --quiet "$IMG1" 2>"$W/req1" || { say "sysctr pull failed"; cat "$W/req1" | tee -a "$LOG"; exit 1; }
read -r q b < <(regsince "$n0"); rec B1.sysctr.requests "$q"; rec B1.sysctr.bytes "$b"
rec B1.sysctr.store_bytes "$(dub "$R1/var/lib/sysctr/repo")"
n0=$(reglines)
$SK "docker://$IMG1" "oci:$SKD/oci:v1" >>"$LOG" 2>&1
read -r q b < <(regsince "$n0"); rec B1.skopeo.requests "$q"; rec B1.skopeo.bytes "$b"
rec B1.skopeo.store_bytes "$(dub "$SKD/oci")"
if [[ -n "$PODMAN_DRIVER" ]]; then
	n0=$(reglines)
	$(podman_cmd "$PMD") pull -q --tls-verify=false "$IMG1" >>"$LOG" 2>&1
	read -r q b < <(regsince "$n0"); rec B1.podman.requests "$q"; rec B1.podman.bytes "$b"
	rec B1.podman.store_bytes "$(dub "$PMD/root")"
fi

# ------------------------------------------------------------------- B2 ---
if ! skipped B2; then
	say "== B2 warm re-pull of $IMG1"
	n0=$(reglines)
	SYSCTR_REPORT_REQUESTS=1 $SYSCTR --root="$R1" pull --tls-verify=false --quiet "$IMG1" 2>"$W/req2"
	read -r q b < <(regsince "$n0"); rec B2.sysctr.requests "$q"; rec B2.sysctr.bytes "$b"
	rec B2.sysctr.self_reported_requests "$(awk '/requests:/{print $2}' "$W/req2")"
	say "    sysctr: $q requests in the registry log ($(cat "$W/req2"))"
	n0=$(reglines)
	$SK "docker://$IMG1" "oci:$SKD/oci:v1" >>"$LOG" 2>&1
	read -r q b < <(regsince "$n0"); rec B2.skopeo.requests "$q"; rec B2.skopeo.bytes "$b"
	if [[ -n "$PODMAN_DRIVER" ]]; then
		n0=$(reglines)
		$(podman_cmd "$PMD") pull -q --tls-verify=false "$IMG1" >>"$LOG" 2>&1
		read -r q b < <(regsince "$n0"); rec B2.podman.requests "$q"; rec B2.podman.bytes "$b"
	fi
	hf B2.sysctr "$(runs 20 5)" 3 "" "$SYSCTR --root=$R1 pull --tls-verify=false --quiet $IMG1"
	hf B2.skopeo "$(runs 10 3)" 2 "" "$SK docker://$IMG1 oci:$SKD/oci:v1"
	[[ -n "$PODMAN_DRIVER" ]] && hf B2.podman "$(runs 10 3)" 2 "" "$(podman_cmd "$PMD") pull -q --tls-verify=false $IMG1 >/dev/null"
fi

# ------------------------------------------------------------------- B3 ---
if ! skipped B3; then
	say "== B3 pull of v2 (one 10 MiB file changed) over v1"
	# timing on copies of the v1 stores (cp -a keeps the hardlinks of the OSTree repo)
	cp -a "$R1" "$W/r1.snap"; cp -a "$SKD" "$W/sk.snap"
	[[ -n "$PODMAN_DRIVER" ]] && cp -a "$PMD" "$W/pm.snap"
	rr_add B3.sysctr "$(aside $W/b3s) && cp -a $W/r1.snap $W/b3s && sync" \
		"$SYSCTR --root=$W/b3s pull --tls-verify=false --quiet $IMG2"
	rr_add B3.skopeo "$(aside $W/b3k) && cp -a $W/sk.snap $W/b3k && sync" \
		"$SK docker://$IMG2 oci:$W/b3k/oci:v2"
	# podman's database records its storage path: restore the copy in place
	[[ -n "$PODMAN_DRIVER" ]] && rr_add B3.podman "$(aside $PMD) && cp -a $W/pm.snap $PMD && sync" \
		"$(podman_cmd "$PMD") pull -q --tls-verify=false $IMG2 >/dev/null"
	rr_run "$(runs 3 1)" 0
	[[ -n "$PODMAN_DRIVER" ]] && trash "$PMD" && cp -a "$W/pm.snap" "$PMD"
	trash "$W/pm.snap"
	trash "$W/b3s" "$W/b3k" "$W/b3p" "$W/r1.snap" "$W/sk.snap"
	# bytes fetched and disk added, on the real v1 stores (they keep v2 afterwards)
	before=$(dub "$R1/var/lib/sysctr/repo"); n0=$(reglines)
	$SYSCTR --root="$R1" pull --tls-verify=false --quiet "$IMG2" >>"$LOG" 2>&1
	read -r q b < <(regsince "$n0")
	rec B3.sysctr.bytes "$b"; rec B3.sysctr.requests "$q"; rec B3.sysctr.disk_added "$(( $(dub "$R1/var/lib/sysctr/repo") - before ))"
	before=$(dub "$SKD/oci"); n0=$(reglines)
	$SK "docker://$IMG2" "oci:$SKD/oci:v2" >>"$LOG" 2>&1
	read -r q b < <(regsince "$n0")
	rec B3.skopeo.bytes "$b"; rec B3.skopeo.requests "$q"; rec B3.skopeo.disk_added "$(( $(dub "$SKD/oci") - before ))"
	before=$(dub "$SKD/oci" "$SKD/bundle1")
	umoci unpack --image "$SKD/oci:v1" "$SKD/bundle1" >/dev/null 2>&1
	mid=$(dub "$SKD/oci" "$SKD/bundle1" "$SKD/bundle2")
	umoci unpack --image "$SKD/oci:v2" "$SKD/bundle2" >/dev/null 2>&1
	rec B3.umoci_unpack_v2.disk_added "$(( $(dub "$SKD/oci" "$SKD/bundle1" "$SKD/bundle2") - mid ))"
	trash "$SKD/bundle1" "$SKD/bundle2"
	if [[ -n "$PODMAN_DRIVER" ]]; then
		before=$(dub "$PMD/root"); n0=$(reglines)
		$(podman_cmd "$PMD") pull -q --tls-verify=false "$IMG2" >>"$LOG" 2>&1
		read -r q b < <(regsince "$n0")
		rec B3.podman.bytes "$b"; rec B3.podman.requests "$q"; rec B3.podman.disk_added "$(( $(dub "$PMD/root") - before ))"
	fi
fi

# ------------------------------------------------------------------- B4 ---
if ! skipped B4; then
	say "== B4 install of $IMG1"
	# a new name per run (no uninstall in between: see aside())
	hf B4.sysctr "$(runs 10 3)" 2 "sync" \
		"$SYSCTR --root=$R1 install --system --name=b4-\$(date +%s%N) $IMG1 >/dev/null"
	hf B4.umoci_unpack "$(runs 3 1)" 1 "$(aside $W/b4u); sync" \
		"umoci unpack --image $SKD/oci:v1 $W/b4u >/dev/null"
	if [[ -n "$PODMAN_DRIVER" ]]; then
		P=$(podman_cmd "$PMD")
		hf B4.podman_create "$(runs 10 3)" 2 "$P rm -f b4 >/dev/null 2>&1; sync" \
			"$P create --name b4 $IMG1 /bin/true >/dev/null"
	fi
	# disk added and hardlinks, one fresh install each
	before=$(dub "$R1")
	$SYSCTR --root="$R1" install --system --name=b4 "$IMG1" >>"$LOG" 2>&1
	rec B4.sysctr.disk_added "$(( $(dub "$R1") - before ))"
	rf=$R1/var/lib/sysctr/containers/b4/rootfs
	tot=$(find "$rf/" -type f | wc -l); one=$(find "$rf/" -type f -links 1 | wc -l)
	onedata=$(find "$rf/" -type f -links 1 -size +0 | wc -l)
	rec B4.sysctr.files "$tot"; rec B4.sysctr.files_nlink1 "$one"; rec B4.sysctr.files_nlink1_nonempty "$onedata"
	say "    deployed regular files: $tot, with link count 1: $one ($onedata of them non-empty); data.bin links: $(stat -c %h "$rf/opt/app/data.bin")"
	rec B4.sysctr.units "$(find "$R1/etc/systemd/system" -name 'b4.*' | wc -l)"
	before=$(dub "$W")
	trash "$W/b4u"; umoci unpack --image "$SKD/oci:v1" "$W/b4u" >/dev/null 2>&1
	rec B4.umoci_unpack.disk_added "$(dub "$W/b4u")"
	trash "$W/b4u"
	if [[ -n "$PODMAN_DRIVER" ]]; then
		$P rm -f b4 >/dev/null 2>&1
		before=$(dub "$PMD/root")
		$P create --name b4 "$IMG1" /bin/true >>"$LOG" 2>&1
		rec B4.podman_create.disk_added "$(( $(dub "$PMD/root") - before ))"
		$P rm -f b4 >/dev/null 2>&1
	fi
fi

# ------------------------------------------------------------------- B9 ---
if ! skipped B9; then
	say "== B9 N installs of $IMG1 into one --root"
	R9=$W/r9
	cp -a "$R1" "$R9"
	base=$(dub "$R9")
	: >"$W/b9.times"
	for i in $(seq 1 "$BENCH_N_MAX"); do
		t0=$(date +%s%N)
		$SYSCTR --root="$R9" install --system --name="n$i" "$IMG1" >/dev/null 2>>"$LOG" || { say "install n$i failed"; break; }
		echo "$i $(( $(date +%s%N) - t0 ))" >>"$W/b9.times"
		case $i in 1|10|50|"$BENCH_N_MAX")
			rec "B9.n$i.disk_added" "$(( $(dub "$R9") - base ))"
			hf "B9.n$i.list" "$(runs 20 5)" 3 "" "$SYSCTR --root=$R9 list >/dev/null"
			;;
		esac
	done
	# per-install time: median, min, max over install #1, #2-10, #11-N
	for r in "1 1" "2 10" "11 $BENCH_N_MAX"; do
		read -r a z <<<"$r"
		line=$(awk -v a="$a" -v z="$z" '$1>=a && $1<=z {print $2/1e9}' "$W/b9.times" | sort -g |
			awk '{v[NR]=$1} END { if (NR) { m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%s\t%s\t%s\t%s", m, v[1], v[NR], NR } }')
		[[ -n "$line" ]] && rec "B9.install_$a-$z" $line
	done
	trash "$R9"
fi

# ------------------------------------------------------------------- B8 ---
if ! skipped B8; then
	say "== B8 update / rollback switch (offline, --root)"
	R8=$W/r8
	cp -a "$R1" "$R8"
	skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false \
		"docker://$IMG1" "docker://$REG/big:cur" >>"$LOG" 2>&1
	$SYSCTR --root="$R8" install --system --name=upd --tls-verify=false "$REG/big:cur" >>"$LOG" 2>&1
	skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false \
		"docker://$IMG2" "docker://$REG/big:cur" >>"$LOG" 2>&1
	t0=$(date +%s%N)
	if $SYSCTR --root="$R8" update --tls-verify=false upd >>"$LOG" 2>&1; then
		rec B8.update_with_pull "$(( $(date +%s%N) - t0 ))e-9" "" "" 1
		say "    update (pull of the changed layer + deploy + switch): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
		hf B8.rollback "$(runs 10 3)" 2 "" "$SYSCTR --root=$R8 rollback upd >/dev/null"
		# update again without pulling: deploy + switch only (the store has both)
		hf B8.update_no_pull "$(runs 5 2)" 1 \
			"$SYSCTR --root=$R8 rollback upd >/dev/null 2>&1; readlink $R8/var/lib/sysctr/containers/upd >/dev/null" \
			"$SYSCTR --root=$R8 update --no-pull upd >/dev/null"
	else
		notrun B8.update "sysctr update failed: $(tail -n 1 "$LOG")"
	fi
	# the live switch (rollback of a running service against a plain
	# restart) is measured with B6, in the booted systemd: b6-systemd.sh
	notrun B8.podman_auto_update "podman auto-update needs systemd-managed containers (podman generate systemd units running under PID 1); no systemd is PID 1 here"
	trash "$R8"
fi

# ---------------------------------------------------------------- B5/B7 ---
if ! skipped B5; then
	say "== B5/B7 shim start-to-exit and memory (bench/shim-start.sh)"
	if [[ -x "$BENCH_BUILDDIR/src/shim/sysctr-shim" && -x "$BENCH_BUILDDIR/tests/shim/sysctr-probe" ]]; then
		SYSCTR_BUILDDIR=$BENCH_BUILDDIR RUNS=$(runs 50 10) bash "$BENCH_DIR/shim-start.sh" \
			"$BENCH_BUILDDIR/src/shim/sysctr-shim" "$BENCH_BUILDDIR/tests/shim/sysctr-probe" \
			>"$BENCH_OUT/shim-start.txt" 2>&1
		rc=$?
		cat "$BENCH_OUT/shim-start.txt" >>"$LOG"
		if (( rc == 0 )); then
			awk '$1 ~ /^(floor|sysctr-shim|bwrap|runc|crun)$/ && $2 ~ /^[0-9.]+$/ {printf "B5.%s\t%s\t\t\t\n", $1, $2/1000}' \
				"$BENCH_OUT/shim-start.txt" >>"$RES"
			sed -n 's/^not measured: \([^:]*\): \(.*\)/B5.\1\tNA\t\t\t\t\2/p' "$BENCH_OUT/shim-start.txt" >>"$RES"
			p=$(sed -n 's/.*total PSS: \([0-9]*\) KiB.*/\1/p' "$BENCH_OUT/shim-start.txt")
			[[ -n "$p" ]] && rec B7.shim_pss_kib "$p"
			p=$(sed -n 's/.*sysctr-shim (unit main pid [0-9]*): PSS \([0-9]*\) KiB.*/\1/p' "$BENCH_OUT/shim-start.txt")
			[[ -n "$p" ]] && rec B7.shim_main_pss_kib "$p"
			p=$(sed -n 's/.*container init (pid 1 inside, [0-9]*): PSS \([0-9]*\) KiB.*/\1/p' "$BENCH_OUT/shim-start.txt")
			[[ -n "$p" ]] && rec B7.shim_init_pss_kib "$p"
			grep -E '^(runc|conmon|crun)[ .].*PSS' "$BENCH_OUT/shim-start.txt" >>"$LOG"
		else
			notrun B5 "bench/shim-start.sh failed: $(tail -n 2 "$BENCH_OUT/shim-start.txt" | tr '\n' ' ')"
		fi
	else
		notrun B5 "no shim/probe in $BENCH_BUILDDIR"
	fi
	# B7 peer: runc's resident memory for the same sleeping payload (foreground run)
	B7=$W/b7; mkdir -p "$B7/bundle/rootfs"/{proc,dev,sys,run,tmp}
	if [[ -x "$BENCH_BUILDDIR/tests/shim/sysctr-probe" ]] &&
		cp "$BENCH_BUILDDIR/tests/shim/sysctr-probe" "$B7/bundle/rootfs/sysctr-probe" &&
		python3 "$SRCDIR/tests/shim/make-config.py" sleep 30 >"$B7/bundle/config.json" 2>>"$LOG"; then
		runc --root "$B7/runc" run --bundle "$B7/bundle" b7 >/dev/null 2>&1 </dev/null & rp=$!
		sleep 1
		pss=0
		for p in $rp $(pgrep -P "$rp"); do
			[[ $(cat /proc/$p/comm 2>/dev/null) == runc* ]] || continue
			v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null); pss=$((pss + ${v:-0}))
		done
		runc --root "$B7/runc" kill b7 KILL >/dev/null 2>&1; wait "$rp" 2>/dev/null
		runc --root "$B7/runc" delete -f b7 >/dev/null 2>&1
		if (( pss > 0 )); then rec B7.runc_pss_kib "$pss"; else notrun B7.runc "runc run did not stay up"; fi
	fi
	notrun B7.conmon "conmon only runs under podman run (needs a container network/cgroup setup; not attempted)"
	rm -rf "$B7"
fi

# ------------------------------------------------------------------- B6 ---
if ! skipped B6; then
	if [[ -f "$BENCH_DIR/b6-systemd.sh" ]]; then
		say "== B6 systemctl start of a Type=notify unit (nspawn systemd)"
		BENCH_PREFIX=$BENCH_PREFIX RES=$RES LOG=$LOG REGISTRY_ADDR=$REGISTRY_ADDR BENCH_QUICK=$BENCH_QUICK \
			bash "$BENCH_DIR/b6-systemd.sh" 2>&1 | tee -a "$LOG" | grep -E '^(not measured|B6)' || true
	else
		notrun B6 "not implemented yet in bench/ (needs the nspawn systemd of tests/lib/nspawn.sh and a Type=notify payload image; left for a follow-up)"
	fi
fi

# ------------------------------------------------------------- B10/B11 ---
if ! skipped B10; then
	say "== B10/B11 boot with 10 system containers vs 10 plain units (nspawn systemd)"
	BENCH_PREFIX=$BENCH_PREFIX RES=$RES BENCH_QUICK=$BENCH_QUICK \
		bash "$BENCH_DIR/b10-boot.sh" 2>&1 | tee -a "$LOG" | grep -E '^(B10|B11|unit )' || true
fi

rec total.run_s "$(( $(date +%s) - T_START ))"
say "== done in $(( $(date +%s) - T_START )) s"
python3 "$BENCH_DIR/report.py" "$RES" "$BENCH_OUT/machine.txt" >"$BENCH_OUT/RESULTS.md" && cat "$BENCH_OUT/RESULTS.md"
