"""Python's side of bench/connection_bench.cpp: multiprocessing.Pipe on this machine.

Prints "python_pipe_rt_pinned" and "python_pipe_rt" <median seconds> (a small object sent and
echoed back; both processes on CPU 0, then placed by the scheduler) and
"python_pipe_1mib <seconds per 1 MiB message>" (send_bytes/recv_bytes, one way).
Usage: connection_bench.py <round trips> <megabytes>
Each figure's line ends with the number of runs it is the median of (1: one run), which
mproc-bench --data records.
"""
import multiprocessing as mp
import os
import statistics
import sys
import time


def echo(conn):
    while True:
        x = conn.recv()
        if x is None:
            return
        conn.send(x)


def sink(conn, n):
    for _ in range(n):
        conn.recv_bytes()
    conn.send(b"done")


def round_trip(ctx, rts):
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b,))
    p.start()
    for _ in range(200):
        a.send(7)
        a.recv()
    times = []
    for _ in range(rts):
        t = time.perf_counter()
        a.send(7)
        a.recv()
        times.append(time.perf_counter() - t)
    a.send(None)
    p.join()
    return statistics.median(times)


if __name__ == "__main__":
    rts = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    ctx = mp.get_context("fork")
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})  # the echo child inherits it: both on CPU 0
    print(f"python_pipe_rt_pinned {round_trip(ctx, rts):.9f} {rts}", flush=True)
    os.sched_setaffinity(0, cpus)
    print(f"python_pipe_rt {round_trip(ctx, rts):.9f} {rts}", flush=True)

    a, b = ctx.Pipe()
    p = ctx.Process(target=sink, args=(b, mib))
    p.start()
    payload = b"x" * (1 << 20)
    t = time.perf_counter()
    for _ in range(mib):
        a.send_bytes(payload)
    a.recv()
    elapsed = time.perf_counter() - t
    p.join()
    print(f"python_pipe_1mib {elapsed / mib:.9f} 1", flush=True)
