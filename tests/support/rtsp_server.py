"""A real RTSP server on loopback for the camera tests (GStreamer's gst-rtsp-server).

Runs under Debian's system Python (python3-gi, gir1.2-gst-rtsp-server-1.0), not the project's
venv: `/usr/bin/python3 rtsp_server.py VIDEO.mp4 PORT`. Serves the H.264 track of VIDEO at
rtsp://127.0.0.1:PORT/live, looping, in real time; the tests kill it to cut the stream.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    video, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{video}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )')
    factory.set_shared(True)
    server.get_mount_points().add_factory("/live", factory)
    server.attach(None)
    print(f"rtsp://127.0.0.1:{port}/live", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
