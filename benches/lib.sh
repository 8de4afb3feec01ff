# shellcheck shell=bash disable=SC2034 # WORK, PIDS and PICKET_BIN are for the sourcing script
# Shell shared by the load scripts (benches/load.sh, benches/load_h2.sh); sourced, not run.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init load            # $WORK (a fresh /tmp/picket-load.XXXXXX), $PIDS, cleanup on exit
#   need wrk                   # exit 2 with a message when a tool is missing
#   build_picket               # cargo build --release -p picket; $PICKET_BIN is the binary
#   { nginx_preamble backend; cat <<EOF ... EOF; } >"$WORK/backend.conf"
#
# Every process a script starts in the background goes into PIDS; on exit each is sent
# SIGTERM, then SIGKILL 0.3 s later, and $WORK is removed.

# bench_init NAME: the work directory and the cleanup trap.
bench_init() {
  WORK=$(mktemp -d "/tmp/picket-$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}

# need TOOL: exit 2 unless TOOL is on the PATH.
need() { command -v "$1" >/dev/null || { echo "$(basename "$0"): $1 is required" >&2; exit 2; }; }

# build_picket: the release build of picket, in $CARGO_TARGET_DIR when set.
build_picket() {
  cargo build --release -q -p picket
  PICKET_BIN="${CARGO_TARGET_DIR:-target}/release/picket"
}

# nginx_preamble NAME: the top of an nginx configuration of these scripts, up to and
# including the opening of its http block: one worker in the foreground, pid and error log
# $WORK/NAME.pid and $WORK/NAME-error.log, no access log, temporary files under $WORK/nginx.
# The caller writes the rest of the http block and closes it.
nginx_preamble() {
  mkdir -p "$WORK/nginx"
  cat <<EOF
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
EOF
}
