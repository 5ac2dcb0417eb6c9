"""The web demo's HTTP server in front of a :class:`t2i_tf.serve.app.DemoApp`: a page per served export and the
JSON API (docs/demo.md lists every endpoint).

Bad input answers 400 ``{"error": ...}``, an unknown path 404; anything unexpected answers 500 with a generic
message (the traceback stays in the server log). POSTs must be same-origin JSON within the body limit; every
request must name this server's host (DNS rebinding), unless it listens on every interface.
"""

from __future__ import annotations

import collections
import json
import selectors
import socket
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from t2i_tf.errors import UserError
from t2i_tf.serve.app import DemoApp, NotFound

MAX_BODY_BYTES = 10 * 1024 * 1024
SOCKET_TIMEOUT_S = 10
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers the API answers (None: any, for a server bound to every interface). A page on another
    site cannot reach a localhost server under a name it controls (DNS rebinding)."""
    if host in WILDCARD_HOSTS:
        return None
    return {f"{name}:{port}" for name in {host, "localhost", "127.0.0.1", "[::1]"}}


def refusal(headers, hosts: set[str] | None) -> tuple[int, str] | None:
    """(status, reason) when an API request must not be served: not JSON (a cross-site form can post text/plain
    without a preflight), an unknown Host, a foreign Origin, or a Content-Length that is not a byte count."""
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return 415, f"the API takes Content-Type: application/json, not {content_type or 'none'}"
    host = headers.get("Host") or ""
    if hosts is not None and host not in hosts:
        return 403, f"requests for host {host!r} are refused (this server answers {', '.join(sorted(hosts))})"
    origin = headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != host:
        return 403, f"cross-origin requests are refused (Origin {origin!r}, Host {host!r})"
    length = headers.get("Content-Length")
    if length is None or not length.isdigit():
        return 411 if length is None else 400, f"Content-Length must be a number of bytes, not {length!r}"
    if int(length) > MAX_BODY_BYTES:
        return 413, f"request body of {int(length)} bytes is over the {MAX_BODY_BYTES} byte limit"
    return None

class BoundedThreadingHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server with at most ``max_workers`` requests served at once and a time limit on every
    socket, so idle or slow clients cannot pile up threads.

    A connection gets a worker only once its client has sent something: until then it waits in a selector (no
    thread) for at most ``idle_timeout`` seconds, at most ``max_waiting`` of them (beyond that the oldest is
    closed). So connections that never send a byte cannot occupy the workers that ``/healthz`` and real requests
    need; the listen backlog (128) only holds connections not yet accepted.
    """

    request_queue_size = 128
    daemon_threads = True

    def __init__(self, address, handler, max_workers: int = 32, idle_timeout: float | None = None,
                 max_waiting: int = 1024):
        self._slots = threading.BoundedSemaphore(max_workers)
        self._idle_timeout = SOCKET_TIMEOUT_S if idle_timeout is None else idle_timeout
        self._max_waiting = max_waiting
        self._incoming: collections.deque = collections.deque()  # accepted, not yet in the selector
        self._ready: collections.deque = collections.deque()  # sent something, waiting for a worker
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closing = False
        super().__init__(address, handler)
        self._dispatcher = threading.Thread(target=self._dispatch, name="http-dispatch", daemon=True)
        self._dispatcher.start()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # the wake-up buffer is full (a wake-up is pending anyway) or closed
            pass

    def process_request(self, request, client_address) -> None:
        """Called by the accepting thread: hand the connection to the dispatcher (never blocks)."""
        self._incoming.append((request, client_address, time.monotonic() + self._idle_timeout))
        self._wake()

    def _dispatch(self) -> None:
        waiting: dict = {}  # socket -> (client_address, deadline), oldest first
        while not self._closing:
            try:
                self._dispatch_once(waiting)
            except Exception:  # noqa: BLE001 -- a bug here must not stop the server from serving
                traceback.print_exc()
                time.sleep(0.05)
        for request in list(waiting) + [r for r, _ in self._ready]:
            self.shutdown_request(request)

    def _dispatch_once(self, waiting: dict) -> None:
        timeout = None
        if waiting:
            timeout = max(0.0, min(d for _, d in waiting.values()) - time.monotonic())
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except OSError:  # BlockingIOError: drained
                    pass
                continue
            self._selector.unregister(key.fileobj)
            self._ready.append((key.fileobj, waiting.pop(key.fileobj)[0]))
        while self._incoming:
            request, address, deadline = self._incoming.popleft()
            if len(waiting) >= self._max_waiting:
                oldest = next(iter(waiting))
                self._selector.unregister(oldest)
                del waiting[oldest]
                self.shutdown_request(oldest)
            try:
                self._selector.register(request, selectors.EVENT_READ)
            except (ValueError, OSError):  # closed meanwhile
                self.shutdown_request(request)
                continue
            waiting[request] = (address, deadline)
        now = time.monotonic()
        for request in [r for r, (_, d) in waiting.items() if d <= now]:
            self._selector.unregister(request)
            del waiting[request]
            self.shutdown_request(request)  # silent for the whole idle timeout
        while self._ready and self._slots.acquire(blocking=False):
            request, address = self._ready.popleft()
            try:
                ThreadingHTTPServer.process_request(self, request, address)
            except Exception:  # noqa: BLE001 -- e.g. no thread could be started: drop this connection only
                self._slots.release()
                self.shutdown_request(request)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()
            self._wake()  # a worker is free for the next ready connection

    def server_close(self) -> None:
        super().server_close()
        self._closing = True
        self._wake()
        self._dispatcher.join(timeout=5)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def make_server(app: DemoApp, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server for ``app`` (not started: call ``serve_forever``; port 0 picks a free port)."""
    hosts: list[set[str] | None] = []  # filled once the port is known

    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT_S  # a client silent this long is disconnected

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value) -> None:
            self._send(status, json.dumps(value).encode("utf-8"), "application/json")

        def do_GET(self) -> None:
            host = self.headers.get("Host") or ""
            if hosts[0] is not None and host not in hosts[0]:
                return self._json(403, {"error": f"requests for host {host!r} are refused"})
            try:
                kind, body = app.get(self.path)
            except NotFound as e:
                return self._json(404, {"error": str(e)})
            except UserError as e:
                return self._json(400, {"error": str(e)})
            except Exception:  # noqa: BLE001 -- a bug, not the client's input: log it, answer without internals
                traceback.print_exc()
                return self._json(500, {"error": "internal error (see the server log)"})
            if kind == "html":
                self._send(200, body.encode("utf-8"), "text/html; charset=utf-8")
            elif kind == "png":
                self._send(200, body, "image/png")
            else:
                self._json(200, body)

        def do_POST(self) -> None:
            if not self.path.startswith("/api/"):
                return self._json(404, {"error": f"no endpoint {self.path}"})
            refused = refusal(self.headers, hosts[0])
            if refused is not None:
                self.close_connection = True  # the body, if any, is not read
                return self._json(refused[0], {"error": refused[1]})
            try:
                try:
                    payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null",
                                         parse_constant=_no_constant)
                except RecursionError:
                    raise UserError("the request body is JSON nested too deeply") from None
                except ValueError as e:
                    raise UserError(f"the request body is not JSON ({e})") from None
                self._json(200, app.post(self.path, payload))
            except NotFound as e:
                self._json(404, {"error": str(e)})
            except UserError as e:
                self._json(400, {"error": str(e)})
            except Exception:  # noqa: BLE001 -- a bug, not the client's input: log it, answer without internals
                traceback.print_exc()
                self._json(500, {"error": "internal error (see the server log)"})

        def log_message(self, fmt: str, *args) -> None:
            print(f"{self.address_string()} {fmt % args}", flush=True)

    server = BoundedThreadingHTTPServer((host, port), Handler)
    hosts.append(allowed_hosts(host, server.server_address[1]))
    return server


def serve(export_dirs: str | list[str], host: str = "127.0.0.1", port: int = 8080, gallery_dir: str | None = None,
          data_dir: str | None = None) -> None:
    """Load every export in ``export_dirs`` and serve their demos until interrupted."""
    app = DemoApp(export_dirs, gallery_dir, data_dir)
    server = make_server(app, host, port)
    shown = "localhost" if host in WILDCARD_HOSTS else host
    print(f"serving {', '.join(d.model.model_name for d in app.demos.values())} at "
          f"http://{shown}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
