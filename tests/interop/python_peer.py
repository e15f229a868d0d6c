"""The Python end of tests/interop: Python's own multiprocessing.connection talking to mproc.

  python_peer.py client HOST PORT KEY      Client -> send_bytes/recv_bytes exchange -> "END"
  python_peer.py listener KEY              Listener on 127.0.0.1:0; prints the port; echoes
  python_peer.py modern_client HOST PORT KEY   as client, but with the 3.12+ "{sha256}" handshake
  python_peer.py modern_listener KEY           as listener, with the 3.12+ handshake

KEY "-" means no authkey. Exit 0 on success, 3 on AuthenticationError (printed first).
The modern_* modes exist because this machine's Python (3.11) speaks only the legacy HMAC-MD5
form; they implement the 3.12 steps (MAC over the whole "{digest}"-prefixed challenge) on top of
a plain, unauthenticated multiprocessing connection.
"""
import hmac
import os
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

CHALLENGE, WELCOME, FAILURE = b"#CHALLENGE#", b"#WELCOME#", b"#FAILURE#"


def modern_deliver(conn, key):
    message = b"{sha256}" + os.urandom(40)
    conn.send_bytes(CHALLENGE + message)
    response = conn.recv_bytes(256)
    if not response.startswith(b"{sha256}"):
        conn.send_bytes(FAILURE)
        raise AuthenticationError("expected a {sha256} response")
    expected = hmac.new(key, message, "sha256").digest()
    if not hmac.compare_digest(expected, response[len(b"{sha256}"):]):
        conn.send_bytes(FAILURE)
        raise AuthenticationError("digest received was wrong")
    conn.send_bytes(WELCOME)


def modern_answer(conn, key):
    message = conn.recv_bytes(256)
    if not message.startswith(CHALLENGE):
        raise AuthenticationError("expected a challenge")
    message = message[len(CHALLENGE):]
    if not message.startswith(b"{"):
        raise AuthenticationError("expected a {digest} prefix from a modern peer")
    name = message[1:message.index(b"}")].decode()
    conn.send_bytes(b"{%s}%s" % (name.encode(), hmac.new(key, message, name).digest()))
    if conn.recv_bytes(256) != WELCOME:
        raise AuthenticationError("digest sent was rejected")


def exchange_as_client(conn):
    conn.send_bytes(b"hello from python")
    print(conn.recv_bytes().decode(), flush=True)
    conn.send_bytes(b"x" * 300000)  # a large message too
    assert conn.recv_bytes() == b"echo:" + b"x" * 300000
    conn.send_bytes(b"END")


def echo(conn):
    while True:
        msg = conn.recv_bytes()
        if msg == b"END":
            return
        conn.send_bytes(b"echo:" + msg)


def main():
    mode = sys.argv[1]
    key = None if sys.argv[-1] == "-" else sys.argv[-1].encode()
    try:
        if mode in ("client", "modern_client"):
            address = (sys.argv[2], int(sys.argv[3]))
            if mode == "client":
                conn = Client(address, authkey=key)
            else:
                conn = Client(address)
                modern_answer(conn, key)
                modern_deliver(conn, key)
            exchange_as_client(conn)
        else:
            listener = Listener(("127.0.0.1", 0), authkey=key if mode == "listener" else None)
            print(listener.address[1], flush=True)
            conn = listener.accept()
            if mode == "modern_listener":
                modern_deliver(conn, key)
                modern_answer(conn, key)
            echo(conn)
    except AuthenticationError as e:
        print(f"AuthenticationError: {e}", flush=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
