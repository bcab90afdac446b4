#!/usr/bin/python3
# Stands in for systemd's notification socket in tests: binds a unix
# datagram socket at argv[1] and prints each message it receives as one JSON
# line {"t": epoch_ms, "fields": ["READY=1", ...]}. Node has no unix
# datagram sockets, hence Python (which FRR's tools already need).
import json, os, socket, sys, time

path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print(json.dumps({"ready": True}), flush=True)
while True:
    data = s.recv(65536)
    fields = [f for f in data.decode("utf-8", "replace").split("\n") if f]
    print(json.dumps({"t": int(time.time() * 1000), "fields": fields}), flush=True)
