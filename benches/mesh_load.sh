#!/usr/bin/env bash
# Mesh mTLS cost: wrk and h2load through two pickets in plaintext (client side → server side →
# nginx) against the same two pickets speaking mesh mTLS to each other (--mesh-upstream on the
# client side, termination on the server side). Keep-alive requests, a new connection per
# request (the handshake cost), and HTTP/2. Only 127.0.0.1 is used; certificates come from a
# throw-away CA made with openssl (EC P-256, SPIFFE URI SANs).
#
#   benches/mesh_load.sh            # 8 s per run, 2 rounds
#   DURATION=20 ROUNDS=3 benches/mesh_load.sh
#
# Needs: wrk, h2load (nghttp2-client), nginx, openssl, taskset. Load generator on CPU 0,
# pickets and nginx on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-2}
WORK=$(mktemp -d /tmp/picket-mesh-load.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
for t in wrk h2load nginx openssl taskset; do
  command -v "$t" >/dev/null || { echo "mesh_load.sh: $t is required" >&2; exit 2; }
done

cargo build --release -q -p picket
BIN=${CARGO_TARGET_DIR:-target}/release/picket

# A root and two workload certificates (server and client), 1 day.
cd "$WORK"
cat >ext.cnf <<EOC
[server]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=URI:spiffe://cluster.local/ns/default/sa/server
[client]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=URI:spiffe://cluster.local/ns/default/sa/client
EOC
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -subj "/O=bench/CN=bench root" -days 2 -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
for w in server client; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $w.key 2>/dev/null
  openssl req -new -key $w.key -subj "/O=picket" -out $w.csr
  openssl x509 -req -in $w.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile ext.cnf -extensions $w -out $w.pem 2>/dev/null
done
cd - >/dev/null

mkdir -p "$WORK/ng"
cat >"$WORK/ng.conf" <<EOC
worker_processes 1; daemon off; pid $WORK/ng.pid; error_log $WORK/ng.err;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/ng; proxy_temp_path $WORK/ng; fastcgi_temp_path $WORK/ng;
  uwsgi_temp_path $WORK/ng; scgi_temp_path $WORK/ng;
  server { listen 127.0.0.1:19101; listen 127.0.0.1:19102 http2; location / { return 200 "ok\n"; } }
}
EOC
taskset -c 1 nginx -c "$WORK/ng.conf" -p "$WORK" & PIDS+=($!)

proxy() { taskset -c 1 "$BIN" proxy --log-format json "$@" 2>>"$WORK/picket.err" >/dev/null & PIDS+=($!); }
SERVER=(--mesh-cert "$WORK/server.pem" --mesh-key "$WORK/server.key" --mesh-trust-bundle "$WORK/ca.pem")
CLIENT=(--mesh-cert "$WORK/client.pem" --mesh-key "$WORK/client.key" --mesh-trust-bundle "$WORK/ca.pem"
        --mesh-upstream spiffe://cluster.local/ns/default/sa/server)
# HTTP/1 to nginx :19101, HTTP/2 (h2c) to nginx :19102; plaintext pairs and mesh pairs.
proxy --listen 127.0.0.1:19181 --upstream 127.0.0.1:19101
proxy --listen 127.0.0.1:19180 --upstream 127.0.0.1:19181
proxy --listen 127.0.0.1:19191 --upstream 127.0.0.1:19101 "${SERVER[@]}"
proxy --listen 127.0.0.1:19190 --upstream 127.0.0.1:19191 "${CLIENT[@]}"
proxy --listen 127.0.0.1:19281 --upstream 127.0.0.1:19102
proxy --listen 127.0.0.1:19280 --upstream 127.0.0.1:19281
proxy --listen 127.0.0.1:19291 --upstream 127.0.0.1:19102 "${SERVER[@]}"
proxy --listen 127.0.0.1:19290 --upstream 127.0.0.1:19291 "${CLIENT[@]}"
sleep 1
curl -fsS -o /dev/null http://127.0.0.1:19190/ && curl -fsS -o /dev/null --http2-prior-knowledge http://127.0.0.1:19290/ \
  || { echo "mesh_load.sh: the mesh pair does not answer" >&2; cat "$WORK/picket.err" >&2; exit 1; }

run() {
  local name=$1; shift
  printf '%-44s ' "$name"
  taskset -c 0 wrk -t1 "$@" | awk '/Requests\/sec/ {rps=$2} /Latency/ {lat=$2} END {print rps " req/s, mean latency " lat}'
}
for _ in $(seq "$ROUNDS"); do
  run "HTTP/1 keep-alive, 50 conns, plaintext" -c50 -d"${DURATION}s" http://127.0.0.1:19180/
  run "HTTP/1 keep-alive, 50 conns, mesh mTLS" -c50 -d"${DURATION}s" http://127.0.0.1:19190/
  run "HTTP/1 connection per request, plaintext" -c10 -d"${DURATION}s" -H "Connection: close" http://127.0.0.1:19180/
  run "HTTP/1 connection per request, mesh mTLS" -c10 -d"${DURATION}s" -H "Connection: close" http://127.0.0.1:19190/
  for p in "19280 plaintext" "19290 mesh mTLS"; do
    set -- $p
    printf '%-44s ' "HTTP/2 10 conns x 10 streams, ${*:2}"
    taskset -c 0 h2load -n 100000 -c 10 -m 10 "http://127.0.0.1:$1/" | awk '/finished in/ {print $4 " req/s"}'
  done
done
