"""The Python half of examples/s06_python_peer: plain multiprocessing.connection, no mproc.

Usage: peer.py PORT AUTHKEY
"""
import sys
from multiprocessing.connection import Client

conn = Client(("127.0.0.1", int(sys.argv[1])), authkey=sys.argv[2].encode())
for question in (b"What is 6 times 7?", b"Which language are you?", b"END"):
    print(f"python sends:  {question.decode()}", flush=True)
    conn.send_bytes(question)
    if question == b"END":
        break
    print(f"python got:    {conn.recv_bytes().decode()}", flush=True)
conn.close()
