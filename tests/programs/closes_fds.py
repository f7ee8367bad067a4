"""A service that closes every descriptor it did not open after gmr's set-up,
as daemonising code does, then opens a socket pair and a file that get the
lowest numbers, gmr's old ones among them.

    closes_fds.py LOG_DIR

Prints "ready", then on each SIGUSR1 "peer <bytes the socket's peer got>
file <the file's bytes>".
"""

import os
import signal
import socket
import sys
import tempfile

import gmr

gmr.TextGuruMeditation.setup_autorun("1.0", service_name="fds", log_dir=sys.argv[1])
os.closerange(3, 65536)
ours, peer = socket.socketpair()
peer.setblocking(False)
data = tempfile.TemporaryFile()
data.write(b"the service's own data\n")
data.flush()


def state(signum, frame) -> None:
    try:
        got = len(peer.recv(65536))
    except BlockingIOError:
        got = 0
    data.seek(0)
    sys.stdout.write(f"peer {got} file {data.read()!r}\n")
    sys.stdout.flush()


signal.signal(signal.SIGUSR1, state)
sys.stdout.write(f"ready {ours.fileno()} {peer.fileno()} {data.fileno()}\n")
sys.stdout.flush()
while True:
    signal.pause()
