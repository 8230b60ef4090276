"""On the host: exit 0 if every HOST:PORT or URL given answers a TCP connection within 2 s."""

import socket
import sys
import urllib.parse

for target in sys.argv[1:]:
    if "://" in target:
        url = urllib.parse.urlsplit(target)
        address = (url.hostname or "127.0.0.1", url.port or 5432)
    else:
        host, _, port = target.partition(":")
        address = (host, int(port))
    with socket.socket() as s:
        s.settimeout(2)
        if s.connect_ex(address) != 0:
            sys.exit(1)
