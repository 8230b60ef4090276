"""A live HTTP MJPEG camera on loopback (multipart/x-mixed-replace), for tests and benchmarks.

`frame(i)` gives the i-th JPEG of a connection, or None to end it; frames go out at `fps`,
paced from the connection's start (no drift). With `once`, only the first connection is
served and later ones get 404, so a source that reconnects when a stream ends does not see it
again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Frames = Callable[[int], "bytes | None"]


def played(jpegs: Sequence[bytes], count: int | None = None) -> Frames:
    """`jpegs` in order: once through (`count` None), or looped until `count` frames were sent."""
    if count is None:
        return lambda i: jpegs[i] if i < len(jpegs) else None
    return lambda i: jpegs[i % len(jpegs)] if i < count else None


def serve_mjpeg(frame: Frames, fps: float, *, once: bool = False) -> tuple[ThreadingHTTPServer, str]:
    """The running camera and its URL; `server.shutdown()` stops it."""
    served = threading.Event()

    class Camera(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if once and served.is_set():
                self.send_error(404)
                return
            served.set()
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            start = time.monotonic()
            i = 0
            try:
                while (jpg := frame(i)) is not None:
                    head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                    self.wfile.write(head + jpg + b"\r\n")
                    i += 1
                    time.sleep(max(0.0, start + i / fps - time.monotonic()))
            except OSError:  # the client went away
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"


@contextmanager
def mjpeg_camera(frame: Frames, fps: float, *, once: bool = False) -> Iterator[str]:
    """A camera for the length of a `with` block; yields its URL."""
    server, url = serve_mjpeg(frame, fps, once=once)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
