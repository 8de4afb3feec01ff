#!/usr/bin/env python3
"""A server-speaks-first TCP test peer: sends "220 greeter ready\r\n" on connect, then echoes
every byte it receives. Prints its port on the first line of stdout."""
import socket
import socketserver
import sys


class Greeter(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"220 greeter ready\r\n")
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    srv = Server(("127.0.0.1", 0), Greeter)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
