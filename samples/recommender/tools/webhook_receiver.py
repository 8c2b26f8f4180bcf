#!/usr/bin/env python3
"""A webhook receiver for the demo (python3, standard library only): listens on
127.0.0.1, appends the body of every POST to OUT as one line, answers 204.
Writes the port it got to PORT_FILE once it listens (port 0 = any free port).

usage: webhook_receiver.py --out OUT --port-file PORT_FILE [--port 0]
"""
import argparse
import http.server
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with open(a.out, "ab") as f:
                f.write(body.replace(b"\n", b" ").strip() + b"\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
