"""A tiny clinical service for the hallpass compose demo.

Answers every request with 200 and a small JSON body naming the service and
the caller that hallpass vouched for (the x-hallpass-source header, set by
hallpass through Envoy). Listens on the loopback of its network namespace
only, so the one way in is through its Envoy. Logs the method and the caller,
never the path: paths carry patient identifiers.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = os.environ.get("SERVICE_NAME", "app")
LISTEN = ("127.0.0.1", int(os.environ.get("PORT", "8080")))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SERVICE
    sys_version = ""

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        caller = self.headers.get("x-hallpass-source", "")
        body = json.dumps({"service": SERVICE, "caller": caller}).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"{SERVICE}: {self.command} from {caller or '(no x-hallpass-source)'}", flush=True)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


if __name__ == "__main__":
    print(f"{SERVICE}: listening on {LISTEN[0]}:{LISTEN[1]}", file=sys.stderr, flush=True)
    ThreadingHTTPServer(LISTEN, Handler).serve_forever()
