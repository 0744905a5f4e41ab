"""A real HTTP server on 127.0.0.1 serving a directory, counting requests, optionally
slow; for the fetcher's tests (and the end-to-end ones)."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.hits[self.path] += 1
        if self.server.delay:
            time.sleep(self.server.delay)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    hits: Counter[str]
    delay: float


@contextmanager
def serve(directory: Path, delay: float = 0.0) -> Iterator[tuple[str, Counter[str]]]:
    """Serve ``directory``; yield the base URL and the per-path request counts."""
    handler = functools.partial(_Handler, directory=str(directory))
    server = _Server(("127.0.0.1", 0), handler)
    server.hits = Counter()
    server.delay = delay
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.hits
    finally:
        server.shutdown()
        server.server_close()
