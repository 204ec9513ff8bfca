#!/usr/bin/env python3
"""Test daemon for health checks: an HTTP server on 127.0.0.1:PORT whose every answer is 500
while FLAG exists (and is empty, or holds this process's PID: only that instance is sick),
200 otherwise. Appends `started PID` to $MARKER (if set); SIGTERM ends it.
"""

import http.server
import os
import signal
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        code = 500 if sick() else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok\n" if code == 200 else b"sick\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


def sick() -> bool:
    try:
        with open(sys.argv[2]) as f:
            who = f.read().strip()
    except OSError:
        return False
    return who in ("", str(os.getpid()))


def main() -> int:
    signal.signal(signal.SIGTERM, lambda s, f: os._exit(0))
    server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    marker = os.environ.get("MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(f"started {os.getpid()}\n")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
