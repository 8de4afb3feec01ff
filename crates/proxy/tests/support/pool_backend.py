#!/usr/bin/env python3
"""A keep-alive HTTP/1.1 backend that says which of its connections served each request, for
the upstream pooling tests. Every response carries `X-Conn: N` (N counts accepted connections
from 1) and, where it has a body, `conn=N` in it. Paths:

  /chunked  chunked body with a trailer      /204, /304  no body
  /close    Connection: close, then closes    /eof        no length: body ends at the close
  HEAD      Content-Length without a body     anything else: 200 with Content-Length

Env IDLE_CLOSE=SECONDS closes a connection idle that long (like a server keep-alive timeout).
Prints its port on the first line of stdout. Stopped by the test through its PID.

  pool_backend.py [HOST]
"""
import itertools
import os
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler

COUNTER = itertools.count(1)
LOCK = threading.Lock()
IDLE_CLOSE = float(os.environ.get("IDLE_CLOSE", "0")) or None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CLOSE

    def setup(self):
        with LOCK:
            self.conn_id = next(COUNTER)
        super().setup()

    def log_message(self, *args):
        pass

    def send(self, raw):
        self.wfile.write(raw)
        self.wfile.flush()

    def do_HEAD(self):
        self.send(b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\nContent-Length: 1234\r\n\r\n" % self.conn_id)

    def do_GET(self):
        n = self.conn_id
        body = b"conn=%d\n" % n
        if self.path == "/chunked":
            self.send(b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n" % n)
            self.send(b"%x\r\n%s\r\n" % (len(body), body))
            self.send(b"3\r\nabc\r\n0\r\nx-sum: 42\r\n\r\n")
        elif self.path == "/204":
            self.send(b"HTTP/1.1 204 No Content\r\nX-Conn: %d\r\n\r\n" % n)
        elif self.path == "/304":
            self.send(b"HTTP/1.1 304 Not Modified\r\nX-Conn: %d\r\nETag: \"x\"\r\n\r\n" % n)
        elif self.path == "/close":
            self.send(b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (n, len(body), body))
            self.close_connection = True
        elif self.path == "/eof":
            self.send(b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\n\r\n%s" % (n, body))
            self.close_connection = True
        else:
            self.send(b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\nContent-Length: %d\r\n\r\n%s" % (n, len(body), body))

    do_POST = do_GET


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    Server.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = Server((host, 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
