#!/usr/bin/env python3
"""TCP probe for the `picket init` tests (crates/proxy/tests/init.rs).

  tcp_probe.py listen ADDR:PORT...   listens on each address ([v6]:port for IPv6), prints
                                     "ready", then one JSON line per accepted connection:
                                     {"local_port", "peer", "orig_dst"} (orig_dst from
                                     SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST, null without
                                     conntrack), and closes it. Stopped by the test (PID).
  tcp_probe.py connect HOST PORT     connects (3 s timeout), prints "connected" and exits 0,
                                     or prints the error and exits 1.

The tests pass this file's text with `python3 -c`, so that a process run under another UID
does not need to read the checkout.
"""
import json
import select
import socket
import struct
import sys

SO_ORIGINAL_DST = 80


def original_dst(conn):
    try:
        if conn.family == socket.AF_INET:
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port = struct.unpack("!H", raw[2:4])[0]
            return "%s:%d" % (socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
        raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        port = struct.unpack("!H", raw[2:4])[0]
        return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
    except OSError:
        return None


def listen(addrs):
    socks = []
    for a in addrs:
        host, port = a.rsplit(":", 1)
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, int(port)))
        s.listen(16)
        socks.append(s)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            conn, peer = s.accept()
            line = {
                "local_port": conn.getsockname()[1],
                "peer": peer[0],
                "orig_dst": original_dst(conn),
            }
            print(json.dumps(line), flush=True)
            conn.close()


def connect(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as e:
        print("failed: %s" % e, flush=True)
        sys.exit(1)
    print("connected", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(sys.argv[2:])
    else:
        connect(sys.argv[2], sys.argv[3])
