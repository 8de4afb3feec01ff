#!/usr/bin/env bash
# HTTP/2 and gRPC load through picket: the backend direct and through picket (gateway mode,
# built-in pack) in one invocation, with ratios. Only 127.0.0.1 is used.
#
#   benches/load_h2.sh               # 10 s per case
#   DURATION=20 benches/load_h2.sh
#
# Needs: h2load (nghttp2-client), nginx (the h2c backend: `listen … http2` serves HTTP/2 with
# prior knowledge), Debian's python3-grpcio (the gRPC backend, crates/proxy/tests/support/
# grpc_peer.py). The load generator is pinned to CPU 0, picket and the backends to CPU 1.
#
# Cases: h2 GET (10 connections x 20 concurrent streams), h2 POST 4 KiB (same), gRPC unary
# with a 100-byte protobuf string (4 connections x 10 streams; the Python backend, not
# picket, bounds this one, so its ratio is the interesting figure).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
. benches/lib.sh

DURATION=${DURATION:-10}
bench_init load-h2
need h2load
need nginx
need taskset
/usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "load_h2.sh: python3-grpcio is required" >&2; exit 2; }

BACKEND=19101
PICKET=19180
GRPC_PICKET=19181

build_picket

{ nginx_preamble backend; cat <<EOF; } >"$WORK/backend.conf"
  keepalive_requests 1000000;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:$BACKEND http2;
    location / { return 200 "ok\n"; }
  }
}
EOF
taskset -c 1 nginx -c "$WORK/backend.conf" -e "$WORK/backend-error.log" &
PIDS+=($!)

taskset -c 1 /usr/bin/python3 crates/proxy/tests/support/grpc_peer.py server >"$WORK/grpc.port" 2>/dev/null &
PIDS+=($!)

taskset -c 1 "$PICKET_BIN" proxy --listen 127.0.0.1:$PICKET --upstream 127.0.0.1:$BACKEND \
  --log-format json >/dev/null 2>"$WORK/picket.log" &
PICKET_PID=$!
PIDS+=($PICKET_PID)

for _ in $(seq 50); do [ -s "$WORK/grpc.port" ] && break; sleep 0.1; done
GRPC_BACKEND=$(head -1 "$WORK/grpc.port")
taskset -c 1 "$PICKET_BIN" proxy --listen 127.0.0.1:$GRPC_PICKET --upstream 127.0.0.1:$GRPC_BACKEND \
  --log-format json >/dev/null 2>"$WORK/picket-grpc.log" &
GRPC_PICKET_PID=$!
PIDS+=($GRPC_PICKET_PID)
sleep 1

head -c 4096 /dev/zero | tr '\0' 'a' | sed 's/^/note=/' | head -c 4096 >"$WORK/post4k.txt"
# A gRPC message: flag 0, length, protobuf field 1 = a 100-byte benign string.
/usr/bin/python3 - "$WORK/grpc.bin" <<'PY'
import struct, sys
text = b"the quick brown fox jumps over the lazy dog; " * 2 + b"0123456789"
pb = b"\x0a" + bytes([len(text)]) + text
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(pb)) + pb)
PY

# Runs h2load and prints "req/s mean_latency_ms failed".
run() {
  local out
  out=$(taskset -c 0 h2load -D "$DURATION" "$@" 2>&1)
  local rps lat failed
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$out")
  lat=$(awk '/^time for request:/ {print $6}' <<<"$out")
  failed=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^failed/) print $i}' <<<"$out")
  echo "$rps $lat ${failed:-?}"
}

printf '%-34s %12s %14s %8s\n' case "req/s" "mean latency" failed
line() { printf '%-34s %12s %14s %8s\n' "$1" "$2" "$3" "$4"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

read -r d_rps d_lat d_f < <(run -c 10 -m 20 "http://127.0.0.1:$BACKEND/")
line "h2 GET direct" "$d_rps" "$d_lat" "$d_f"
read -r p_rps p_lat p_f < <(run -c 10 -m 20 "http://127.0.0.1:$PICKET/")
line "h2 GET picket" "$p_rps" "$p_lat" "$p_f"
echo "  picket / direct: $(ratio "$p_rps" "$d_rps")"

read -r d_rps d_lat d_f < <(run -c 10 -m 20 -d "$WORK/post4k.txt" -H 'content-type: application/x-www-form-urlencoded' "http://127.0.0.1:$BACKEND/")
line "h2 POST 4 KiB direct" "$d_rps" "$d_lat" "$d_f"
read -r p_rps p_lat p_f < <(run -c 10 -m 20 -d "$WORK/post4k.txt" -H 'content-type: application/x-www-form-urlencoded' "http://127.0.0.1:$PICKET/")
line "h2 POST 4 KiB picket" "$p_rps" "$p_lat" "$p_f"
echo "  picket / direct: $(ratio "$p_rps" "$d_rps")"

GRPC=(-c 4 -m 10 -d "$WORK/grpc.bin" -H 'content-type: application/grpc' -H 'te: trailers')
read -r d_rps d_lat d_f < <(run "${GRPC[@]}" "http://127.0.0.1:$GRPC_BACKEND/picket.test.Echo/Say")
line "gRPC unary direct" "$d_rps" "$d_lat" "$d_f"
read -r p_rps p_lat p_f < <(run "${GRPC[@]}" "http://127.0.0.1:$GRPC_PICKET/picket.test.Echo/Say")
line "gRPC unary picket" "$p_rps" "$p_lat" "$p_f"
echo "  picket / direct: $(ratio "$p_rps" "$d_rps")"

rss() { awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
echo "picket peak RSS: h2 $(rss $PICKET_PID), gRPC $(rss $GRPC_PICKET_PID)"
echo "date: $(date -u +%FT%TZ)  duration ${DURATION}s, h2load on CPU 0, servers on CPU 1"
