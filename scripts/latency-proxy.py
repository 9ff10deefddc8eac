#!/usr/bin/env python3
"""A reverse proxy on 127.0.0.1 that adds a fixed delay to every request before passing it to an
upstream on 127.0.0.1 (moto; its own time comes on top): a stand-in for the network's round trip, for scripts/bench-live.sh.

    latency-proxy.py --upstream http://127.0.0.1:5000 --delay-ms 100 --port-file FILE

Prints nothing; writes the port it listens on to FILE once it is ready. One thread per connection,
HTTP/1.1 keep-alive, so concurrent calls overlap as they would against AWS.
"""
import argparse
import http.client
import http.server
import socket
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", help="append one line per call: arrival and answer times (ms, monotonic) and the operation")
    a = ap.parse_args()
    up = urllib.parse.urlsplit(a.upstream)
    if up.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("latency-proxy: the upstream must be on 127.0.0.1")
    delay = a.delay_ms / 1000.0
    local = threading.local()
    log = open(a.log, "a", buffering=1) if a.log else None
    lock = threading.Lock()

    def upstream():
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        return c

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def relay(self):
            t0 = time.monotonic()
            time.sleep(delay)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            for attempt in (0, 1):
                try:
                    c = upstream()
                    c.request(self.command, self.path, body=body, headers=headers)
                    r = c.getresponse()
                    data = r.read()
                    break
                except (http.client.HTTPException, OSError):
                    local.conn = None
                    if attempt:
                        raise
            # Status, headers and body in one write, with Nagle off: a response split in two
            # segments waits for the client's delayed ACK (40 ms), a proxy artefact, not latency.
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(data)
            self.wfile.write(b"".join(self._headers_buffer))
            self._headers_buffer = []
            if log:
                op = self.headers.get("X-Amz-Target") or self.path
                with lock:
                    log.write("%.1f %.1f %s %s\n" % (t0 * 1000, time.monotonic() * 1000, self.command, op))

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

    class Server(http.server.ThreadingHTTPServer):
        # socketserver's default backlog of 5 drops connections when a client opens ten at once
        # (verification does), and the retried handshake costs hundreds of ms: a proxy artefact.
        request_queue_size = 128

    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(a.port_file, "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
