#!/usr/bin/env python3
"""Test daemon for health checks: an HTTP server on 127.0.0.1:PORT whose every answer is 500
while FLAG exists, 200 otherwise. Appends `started PID` to $MARKER (if set); SIGTERM ends it.
"""

import http.server
import os
import signal
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        code = 500 if os.path.exists(sys.argv[2]) else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok\n" if code == 200 else b"sick\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


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
