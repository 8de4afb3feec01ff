#!/usr/bin/env bash
# Connection-per-request load (the sidecar's common case: many clients and health checkers
# that open a connection per request): `connload` (benches/src/bin/connload.rs: a new
# connection per request, no `Connection: close` header) against the backend direct,
# picket with the upstream pool off (`--upstream-pool-max-per-destination 0`: a new upstream
# connection per client connection, as before pooling) and picket with the pool on (the
# default), interleaved in rounds because the machine is shared and noisy. Only 127.0.0.1.
#
#   benches/pool.sh                        # 3 rounds of 5 s each, 10 concurrent clients
#   ROUNDS=5 DURATION=10 CONNS=20 benches/pool.sh
#   BEFORE=/path/to/older/picket benches/pool.sh   # also an older build ("before")
#
# Clients that send `Connection: close` (`hey -disable-keepalive`, kubelet HTTP probes) gain
# nothing: the server closes the upstream connection as asked, and picket forwards requests as
# sent. `hey -disable-keepalive` runs once per target at the end to show that.
#
# Needs: nginx (the backend), taskset; hey optional. The load runs on CPU 0, picket and nginx
# on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-10}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/picket-pool.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
for t in nginx taskset; do
  command -v "$t" >/dev/null || { echo "pool.sh: $t is required" >&2; exit 2; }
done

BASE=${PORT_BASE:-19400}
BACKEND=$BASE
POOL_OFF=$((BASE + 1))
POOL_ON=$((BASE + 2))
BEFORE_PORT=$((BASE + 3))
ADMIN=$((BASE + 4))
cargo build --release -q -p picket -p picket-benches --bin picket --bin connload
mkdir -p "$WORK/nginx"
cat >"$WORK/backend.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/backend.pid;
error_log $WORK/backend-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND; location / { return 200 "ok\n"; } }
}
CONF
taskset -c 1 nginx -c "$WORK/backend.conf" -p "$WORK" &
PIDS+=($!)
taskset -c 1 "$TARGET/release/picket" proxy --listen 127.0.0.1:$POOL_OFF --upstream 127.0.0.1:$BACKEND \
  --upstream-pool-max-per-destination 0 >"$WORK/off-blocks.log" 2>"$WORK/off.log" &
PIDS+=($!)
taskset -c 1 "$TARGET/release/picket" proxy --listen 127.0.0.1:$POOL_ON --upstream 127.0.0.1:$BACKEND \
  --admin-listen 127.0.0.1:$ADMIN >"$WORK/on-blocks.log" 2>"$WORK/on.log" &
PIDS+=($!)
sleep 0.5
for p in "${PIDS[@]}"; do
  kill -0 "$p" 2>/dev/null || { echo "pool.sh: a server did not start (ports $BASE-$ADMIN in use? set PORT_BASE)" >&2; exit 2; }
done
TARGETS="direct:$BACKEND pool-off:$POOL_OFF pool-on:$POOL_ON"
if [ -n "${BEFORE:-}" ]; then
  taskset -c 1 "$BEFORE" proxy --listen 127.0.0.1:$BEFORE_PORT --upstream 127.0.0.1:$BACKEND \
    >"$WORK/before-blocks.log" 2>"$WORK/before.log" &
  PIDS+=($!)
  TARGETS="direct:$BACKEND before:$BEFORE_PORT pool-off:$POOL_OFF pool-on:$POOL_ON"
fi
for port in $BACKEND $POOL_OFF $POOL_ON ${BEFORE:+$BEFORE_PORT}; do
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
  done
done

run() { # name port
  local out rps
  out=$(taskset -c 0 "$TARGET/release/connload" "127.0.0.1:$2" "$CONNS" "$DURATION")
  rps=$(awk '{print $2}' <<<"$out")
  printf '%-10s %s\n' "$1" "$out"
  echo "$1 $rps" >>"$WORK/results"
}
echo "connection per request: connload, $CONNS threads, ${DURATION}s per run, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  for t in $TARGETS; do run "${t%%:*}" "${t##*:}"; done
done
awk '{s[$1]+=$2; n[$1]++} END {
  d=s["direct"]/n["direct"];
  for (k in s) printf "mean %-9s %7.0f req/s  %.2f of direct\n", k, s[k]/n[k], s[k]/n[k]/d
}' "$WORK/results" | sort
if command -v hey >/dev/null; then
  echo "hey -disable-keepalive (sends Connection: close), ${DURATION}s each"
  for t in $TARGETS; do
    printf '%-10s ' "${t%%:*}"
    taskset -c 0 hey -disable-keepalive -z "${DURATION}s" -c "$CONNS" "http://127.0.0.1:${t##*:}/" |
      awk '/Requests\/sec/ {printf "req/s %.0f\n", $2}'
  done
fi
curl -s http://127.0.0.1:$ADMIN/metrics | grep -E '^picket_upstream_(connections_total|idle)' || true
