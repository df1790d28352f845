#!/usr/bin/env python3
"""notify-listen.py ADDRESS COMMAND...: bind a unix datagram socket at ADDRESS
('@name' = abstract), run COMMAND with NOTIFY_SOCKET=ADDRESS, then print every
datagram received (lines joined by '|') as MSG:..., and EXIT:<status>."""
import os
import socket
import subprocess
import sys

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
p = subprocess.run(sys.argv[2:], env=dict(os.environ, NOTIFY_SOCKET=path))
s.settimeout(0.5)
try:
    while True:
        print("MSG:" + s.recv(4096).decode(errors="replace").replace("\n", "|"), flush=True)
except socket.timeout:
    pass
print("EXIT:%d" % p.returncode, flush=True)
