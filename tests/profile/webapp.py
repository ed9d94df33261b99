"""A small web service for the profile tests: reads its JSON config at start
and on every request, answers GET, logs each request to its access log.

    GET /          the greeting from the config
    GET /lookup    resolves config["name"] (DNS) and UDP-connects to config["peer"]
Exploit-like endpoints (what an attacker would make it do):
    GET /shell     runs /bin/sh -c true
    GET /write     creates config["drop_dir"] and writes a file in it
    GET /dns       resolves config["evil_name"]
    GET /connect   UDP-connects to config["evil_peer"]
Prints "ready PORT" once it listens.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = sys.argv[sys.argv.index("--config") + 1]


def config() -> dict[str, object]:
    with open(CONFIG, encoding="utf-8") as f:
        return json.load(f)


def resolve(name: str) -> None:
    try:
        socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_DGRAM)
    except socket.gaierror:
        pass   # NXDOMAIN from the test's dnsmasq: the query was sent all the same


def udp_connect(peer: list[object]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((str(peer[0]), int(str(peer[1]))))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        conf = config()
        if self.path == "/lookup":
            resolve(str(conf["name"]))
            udp_connect(list(conf["peer"]))  # type: ignore[call-overload]
        elif self.path == "/shell":
            subprocess.run(["/bin/sh", "-c", "true"], check=True)
        elif self.path == "/write":
            drop = str(conf["drop_dir"])
            os.makedirs(drop, exist_ok=True)
            with open(os.path.join(drop, "payload"), "w", encoding="utf-8") as f:
                f.write("x")
        elif self.path == "/dns":
            resolve(str(conf["evil_name"]))
        elif self.path == "/connect":
            udp_connect(list(conf["evil_peer"]))  # type: ignore[call-overload]
        body = f"{conf['greeting']} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        with open(str(config()["access_log"]), "a", encoding="utf-8") as f:
            f.write(format % args + "\n")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
