#!/usr/bin/env python3
"""Test daemon for servicectl's fleet tests: an HTTP server that answers every GET with
$VERSION, so that a client can tell which definition a host runs.

  version_server.py --bind ADDR --port N [--require FILE]   serve; exit 3 at once if FILE is
                                                            missing (a start that fails)
  version_server.py --check FILE                            the config test: FILE must be
                                                            readable and say "ok"
Exits 0 on SIGTERM.
"""

import argparse
import http.server
import os
import signal
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = (os.environ.get("VERSION", "none") + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def check(path: str) -> int:
    try:
        with open(path) as fh:
            said = fh.read().strip()
    except OSError as exc:
        print(f"cannot read the configuration: {exc}", file=sys.stderr)
        return 1
    if said != "ok":
        print(f"{path}: says {said!r}, not ok", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--require", metavar="FILE")
    p.add_argument("--check", metavar="FILE")
    args = p.parse_args()
    if args.check:
        return check(args.check)
    if args.require and not os.path.exists(args.require):
        print(f"{args.require} is missing; cannot serve", file=sys.stderr)
        return 3
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = http.server.HTTPServer((args.bind, args.port), Handler)
    print(f"serving {os.environ.get('VERSION')} on {args.bind}:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
