"""Python's side of bench/managers_bench.cpp: multiprocessing's SyncManager on this machine.

Prints "python_call <seconds>" (the median round trip of a dict proxy's get, every process on
CPU 0), and
"python_1_client" / "python_4_clients" <calls per second> (client processes alternating set and
get on one dict proxy).
Usage: managers_bench.py <calls per client>
Each figure's line ends with the number of runs it is the median of (1: one run), which
mproc-bench --data records.
"""
import multiprocessing as mp
import os
import sys
import time


def client(d, i, n, go):
    key = f"client-{i}"
    go.wait()
    for k in range(0, n, 2):
        d[key] = k
        assert d[key] == k


def calls_per_second(ctx, m, clients, n):
    d = m.dict()
    go = ctx.Event()
    ps = [ctx.Process(target=client, args=(d, i, n, go)) for i in range(clients)]
    for p in ps:
        p.start()
    time.sleep(0.2)
    t = time.perf_counter()
    go.set()
    for p in ps:
        p.join()
    return clients * n / (time.perf_counter() - t)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    ctx = mp.get_context("fork")
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})  # the round trips on one CPU, as mproc's (the manager inherits it)
    with ctx.Manager() as m:
        d = m.dict({"k": 7})
        times = []
        for _ in range(200):
            d["k"]
        for _ in range(n):
            t = time.perf_counter()
            d["k"]
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"python_call {times[len(times) // 2]:.9f} {n}", flush=True)
    os.sched_setaffinity(0, everywhere)
    with ctx.Manager() as m:
        one = sorted(calls_per_second(ctx, m, 1, n) for _ in range(3))[1]
        print(f"python_1_client {one:.1f} 3", flush=True)
        four = sorted(calls_per_second(ctx, m, 4, n) for _ in range(3))[1]
        print(f"python_4_clients {four:.1f} 3", flush=True)
