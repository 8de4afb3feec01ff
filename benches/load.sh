#!/usr/bin/env bash
# Proxy load benchmark: the backend direct, through picket (gateway mode, built-in pack), and
# through HAProxy (mode http) and nginx + ModSecurity v3 + OWASP CRS (paranoia level 1) when
# they are installed, in one invocation, with ratios. Only 127.0.0.1 is used.
#
#   benches/load.sh                 # GET keep-alive at 50 connections, POST 4 KiB, 10 s each
#   DURATION=20 ROUNDS=3 benches/load.sh
#
# With `hey` installed (Debian package hey) it also runs GET at a fixed 1,000 requests/s (10
# keep-alive workers at 100 requests/s each, RATE_DURATION seconds, default 20) against the
# backend direct, picket and HAProxy, and prints p50/p99 and the p99 each adds over direct; and
# it prints picket's RSS while idle, before any load.
#
# Needs: wrk, nginx (the backend); optional: haproxy, libnginx-mod-http-modsecurity +
# modsecurity-crs. Debian: apt-get install wrk nginx haproxy libnginx-mod-http-modsecurity
# modsecurity-crs. The load generator is pinned to CPU 0, proxies and backend to CPU 1 (the
# layout of ../shared/bench/README.md's figures).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
. benches/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}
CONNS=${CONNS:-50}
bench_init load
need wrk
need nginx
need taskset

BACKEND=19001
PICKET=19080
HAPROXY=19081
MODSEC=19082

build_picket
python3 ../shared/bench/gen_inputs.py bodies "$WORK" >/dev/null
POST_BODY="$WORK/post4k.txt"
[ -f "$POST_BODY" ] || { echo "no post4k.txt from gen_inputs.py" >&2; exit 2; }

{ nginx_preamble backend; cat <<EOF; } >"$WORK/backend.conf"
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$BACKEND;
    client_max_body_size 10m;
    location / { client_body_buffer_size 128k; return 200 "ok\n"; }
  }
}
EOF
taskset -c 1 nginx -c "$WORK/backend.conf" -p "$WORK" &
PIDS+=($!)

taskset -c 1 "$PICKET_BIN" proxy --listen 127.0.0.1:$PICKET --upstream 127.0.0.1:$BACKEND \
  >"$WORK/picket-blocks.log" 2>"$WORK/picket.log" &
PICKET_PID=$!
PIDS+=($PICKET_PID)

HAPROXY_PID=""
if command -v haproxy >/dev/null; then
  cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$HAPROXY
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND
EOF
  taskset -c 1 haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  PIDS+=($HAPROXY_PID)
fi

MODSEC_PID=""
MODSEC_MODULE=$(ls /usr/lib/nginx/modules/ngx_http_modsecurity_module.so 2>/dev/null || true)
CRS_SETUP=$(ls /etc/modsecurity/crs/crs-setup.conf 2>/dev/null || true)
MODSEC_BASE=$(ls /etc/nginx/modsecurity.conf /etc/modsecurity/modsecurity.conf-recommended 2>/dev/null | head -1 || true)
NDK_MODULE=$(ls /usr/lib/nginx/modules/ndk_http_module.so 2>/dev/null || true)
if [ -n "$MODSEC_MODULE" ] && [ -n "$CRS_SETUP" ] && [ -n "$MODSEC_BASE" ]; then
  # The packaged base configuration, switched from DetectionOnly to blocking, audit log off.
  sed -e 's/^SecRuleEngine .*/SecRuleEngine On/' -e 's/^SecAuditEngine .*/SecAuditEngine Off/' \
    "$MODSEC_BASE" >"$WORK/modsecurity.conf"
  sed -i "s#^SecAuditLog .*#SecAuditLog $WORK/modsec_audit.log#" "$WORK/modsecurity.conf"
  # The base file names its unicode map relative to itself.
  UNICODE_MAP=$(ls "$(dirname "$MODSEC_BASE")/unicode.mapping" /etc/nginx/unicode.mapping /etc/modsecurity/unicode.mapping 2>/dev/null | head -1 || true)
  [ -n "$UNICODE_MAP" ] && cp "$UNICODE_MAP" "$WORK/unicode.mapping"
  cat >"$WORK/modsec-main.conf" <<EOF
Include $WORK/modsecurity.conf
Include $CRS_SETUP
Include /usr/share/modsecurity-crs/rules/*.conf
EOF
  {
    cat <<EOF
${NDK_MODULE:+load_module $NDK_MODULE;}
load_module $MODSEC_MODULE;
EOF
    nginx_preamble modsec
    cat <<EOF
  upstream be { server 127.0.0.1:$BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$MODSEC;
    client_max_body_size 10m;
    modsecurity on;
    modsecurity_rules_file $WORK/modsec-main.conf;
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://be;
    }
  }
}
EOF
  } >"$WORK/modsec-nginx.conf"
  taskset -c 1 nginx -c "$WORK/modsec-nginx.conf" -p "$WORK" >"$WORK/modsec.log" 2>&1 &
  MODSEC_PID=$!
  PIDS+=($MODSEC_PID)
fi

sleep 1.5
for port in $BACKEND $PICKET; do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/" || { echo "port $port not answering" >&2; cat "$WORK"/*.log >&2; exit 1; }
done
[ -n "$HAPROXY_PID" ] && ! curl -fsS -o /dev/null "http://127.0.0.1:$HAPROXY/" && HAPROXY_PID=""
[ -n "$MODSEC_PID" ] && ! curl -fsS -o /dev/null "http://127.0.0.1:$MODSEC/" && { echo "nginx+modsecurity did not start" >&2; MODSEC_PID=""; }
# Idle: started, one request served, no load yet.
PICKET_IDLE_RSS=$(awk '/^VmRSS/ {print $2}' /proc/"$PICKET_PID"/status)

cat >"$WORK/post.lua" <<EOF
local f = io.open("$POST_BODY", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOF

# rss KiB of a process and its children (nginx workers)
rss_kib() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    total=$((total + $(awk '/^VmHWM/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# run NAME PORT SCRIPT -> "rps p50 p99"
run() {
  local port=$2 script=$3 out
  if [ -n "$script" ]; then
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "http://127.0.0.1:$port/")
  else
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/")
  fi
  local rps p50 p99 errs
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  echo "$rps $p50 $p99 ${errs:-}"
}

declare -A RESULT
targets=("direct:$BACKEND:" "picket:$PICKET:$PICKET_PID")
[ -n "$HAPROXY_PID" ] && targets+=("haproxy:$HAPROXY:$HAPROXY_PID")
[ -n "$MODSEC_PID" ] && targets+=("nginx+modsec:$MODSEC:$MODSEC_PID")

for round in $(seq 1 "$ROUNDS"); do
  for kind in get post4k; do
    for t in "${targets[@]}"; do
      IFS=: read -r name port pid <<<"$t"
      script=""
      [ "$kind" = post4k ] && script="$WORK/post.lua"
      r=$(run "$name" "$port" "$script")
      RESULT["$kind/$name/$round"]="$r"
      echo "round $round $kind $name: $r" >&2
    done
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo
echo "date: $(date -u +%FT%TZ)  duration ${DURATION}s x ${ROUNDS} round(s), ${CONNS} connections, wrk on CPU 0, servers on CPU 1"
printf "%-8s %-14s %12s %10s %10s %10s\n" kind target "req/s" p50 p99 "RSS KiB"
for kind in get post4k; do
  declare -A RPS=()
  for t in "${targets[@]}"; do
    IFS=: read -r name port pid <<<"$t"
    rps=$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULT[$kind/$name/$r]}" | awk '{print $1}'; done | median)
    last="${RESULT[$kind/$name/$ROUNDS]}"
    p50=$(awk '{print $2}' <<<"$last"); p99=$(awk '{print $3}' <<<"$last")
    rss="-"; [ -n "$pid" ] && rss=$(rss_kib "$pid")
    RPS[$name]=$rps
    printf "%-8s %-14s %12s %10s %10s %10s\n" "$kind" "$name" "$rps" "$p50" "$p99" "$rss"
  done
  if [ -n "${RPS[haproxy]:-}" ]; then
    awk -v a="${RPS[picket]}" -v b="${RPS[haproxy]}" -v k="$kind" 'BEGIN {printf "%-8s picket / haproxy       = %.2f\n", k, a/b}'
  fi
  if [ -n "${RPS[nginx+modsec]:-}" ]; then
    awk -v a="${RPS[picket]}" -v b="${RPS[nginx+modsec]}" -v k="$kind" 'BEGIN {printf "%-8s picket / nginx+modsec  = %.2f\n", k, a/b}'
  fi
  unset RPS
done
echo "picket RSS idle (after start and one request): ${PICKET_IDLE_RSS} KiB"

# Fixed rate: hey's latency percentiles at 1,000 requests/s, in milliseconds.
if command -v hey >/dev/null; then
  RATE_DURATION=${RATE_DURATION:-20}
  echo
  echo "fixed rate: GET at 1,000 requests/s (hey -c 10 -q 100, keep-alive) for ${RATE_DURATION}s each, hey on CPU 0"
  printf "%-14s %10s %10s %10s %10s\n" target "req/s" "p50 ms" "p99 ms" "+p99 ms"
  direct_p99=""
  for t in "${targets[@]}"; do
    IFS=: read -r name port pid <<<"$t"
    [ "$name" = nginx+modsec ] && continue # 0.5k requests/s at most: cannot hold the rate
    out=$(taskset -c 0 hey -z "${RATE_DURATION}s" -c 10 -q 100 "http://127.0.0.1:$port/")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {printf "%.3f", $3*1000}' <<<"$out")
    p99=$(awk '$1=="99%" {printf "%.3f", $3*1000}' <<<"$out")
    [ -z "$direct_p99" ] && direct_p99=$p99
    added=$(awk -v a="$p99" -v b="$direct_p99" 'BEGIN {printf "%.3f", a-b}')
    printf "%-14s %10s %10s %10s %10s\n" "$name" "$rps" "$p50" "$p99" "$added"
  done
fi

blocks=$(wc -l <"$WORK/picket-blocks.log")
echo "picket block log lines during the run: $blocks (the load is benign: expect 0)"
