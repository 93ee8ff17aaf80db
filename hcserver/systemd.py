"""systemd's readiness protocol (sd_notify), in the few lines it takes: with `Type=notify` systemd
starts units that wait for hcserver only once it has sent READY=1, after recovery and listening.

    notify("READY=1")      # does nothing unless systemd set $NOTIFY_SOCKET
"""

from __future__ import annotations

import os
import socket


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send `message` to $NOTIFY_SOCKET (a path, or an abstract socket name starting with @);
    False when there is none or it cannot be reached."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True
