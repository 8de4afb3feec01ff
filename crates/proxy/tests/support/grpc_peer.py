#!/usr/bin/env python3
"""gRPC test peer (grpcio, no generated code: messages are encoded by hand as a protobuf with
one string in field 1).

  grpc_peer.py server [HOST [PORT]]   serves picket.test.Echo, prints its port on line 1
                                      (HOST 127.0.0.1, '[::]' for all addresses; PORT 0: any)
      Say  (unary)          replies "hello <text>"
      Chat (bidi stream)    replies "echo <text>" to each message
      Seen (unary)          replies every text the server received so far, one per line
  grpc_peer.py say ADDR TEXT          prints {"status": ..., "replies": [...], "details": ...}
  grpc_peer.py chat ADDR TEXT...      sends each text after the reply to the one before
  grpc_peer.py seen ADDR              prints the server's received texts as JSON
"""
import json
import queue
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "picket.test.Echo"


def pb(text: bytes) -> bytes:
    out = bytearray(b"\x0a")
    n = len(text)
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            break
    return bytes(out) + text


def unpb(msg: bytes) -> bytes:
    if not msg or msg[0] != 0x0A:
        return b""
    n, shift, i = 0, 0, 1
    while i < len(msg):
        b = msg[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return msg[i : i + n]


def serve(host, port=0):
    seen = []
    lock = threading.Lock()

    def note(text):
        with lock:
            seen.append(text)

    def say(request, context):
        text = unpb(request)
        note(text)
        return pb(b"hello " + text)

    def chat(requests, context):
        for r in requests:
            text = unpb(r)
            note(text)
            yield pb(b"echo " + text)

    def seen_rpc(request, context):
        with lock:
            return pb(b"\n".join(seen))

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Say": grpc.unary_unary_rpc_method_handler(say),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
            "Seen": grpc.unary_unary_rpc_method_handler(seen_rpc),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{host}:{port}")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def result(status, replies, details=""):
    print(json.dumps({"status": status, "replies": replies, "details": details}), flush=True)


def say_client(addr, text):
    with grpc.insecure_channel(addr) as ch:
        call = ch.unary_unary(f"/{SERVICE}/Say")
        try:
            r = call(pb(text.encode()), timeout=10)
            result("OK", [unpb(r).decode()])
        except grpc.RpcError as e:
            result(e.code().name, [], e.details() or "")


def chat_client(addr, texts):
    replied = queue.Queue()

    def requests():
        for t in texts:
            yield pb(t.encode())
            try:
                replied.get(timeout=10)
            except queue.Empty:
                return

    replies = []
    with grpc.insecure_channel(addr) as ch:
        call = ch.stream_stream(f"/{SERVICE}/Chat")
        try:
            for r in call(requests(), timeout=10):
                replies.append(unpb(r).decode())
                replied.put(1)
            result("OK", replies)
        except grpc.RpcError as e:
            result(e.code().name, replies, e.details() or "")


def seen_client(addr):
    with grpc.insecure_channel(addr) as ch:
        r = ch.unary_unary(f"/{SERVICE}/Seen")(b"", timeout=10)
        text = unpb(r).decode()
        print(json.dumps(text.split("\n") if text else []), flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "server":
        serve(
            sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1",
            int(sys.argv[3]) if len(sys.argv) > 3 else 0,
        )
    elif cmd == "say":
        say_client(sys.argv[2], sys.argv[3])
    elif cmd == "chat":
        chat_client(sys.argv[2], sys.argv[3:])
    elif cmd == "seen":
        seen_client(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
