#!/usr/bin/env python3
"""A keep-alive HTTP/1.1 test backend for picket's integration tests.

Answers every request with 200 and a JSON body describing what arrived: method, path, the
header names exactly as received (case and order), and the body length. Prints its port on the
first line of stdout. Stopped by the test through its PID.

  backend.py [HOST [PORT]]    HOST 127.0.0.1 by default (an address with ':' is IPv6; '::'
                              also takes IPv4), PORT 0 (any free port) by default
"""
import json
import socket
import socketserver
import sys
from http.server import BaseHTTPRequestHandler


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        out = json.dumps({
            "method": self.command,
            "path": self.path,
            "headers": [k for k in self.headers.keys()],
            "body_len": len(body),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if self.close_connection:
            # The client asked for it: say so, so it does not try to reuse the connection.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = handle_one

    def log_message(self, fmt, *args):
        sys.stderr.write("backend: " + (fmt % args) + "\n")


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server6(Server):
    address_family = socket.AF_INET6


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    srv = (Server6 if ":" in host else Server)((host, port), Echo)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
