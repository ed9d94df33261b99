"""A small HTTPS webhook receiver for the tests (run as its own process so
a test can stop and restart it): every POST is appended to OUT as one JSON
line {"path", "content_type", "authorization", "body"}, then answered 200.

    python webhook_server.py PORT CERT KEY OUT
"""

from __future__ import annotations

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as collectors do

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record = {"path": self.path, "content_type": self.headers.get("Content-Type"),
                  "authorization": self.headers.get("Authorization"), "body": body.decode()}
        with open(self.server.out, "a") as f:  # type: ignore[attr-defined]
            f.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.allow_reuse_address = True
    server.out = out  # type: ignore[attr-defined]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
