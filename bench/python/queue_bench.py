"""Python's side of bench/queue_bench.cpp: multiprocessing.Queue on this machine.

Prints "python_queue_small <messages per second>" (one producer process putting small ints,
this process getting them) and "python_queue_1mib <seconds per 1 MiB message>".
Usage: queue_bench.py <small messages> <MiB>
"""
import multiprocessing as mp
import sys
import time


def put_ints(q, n):
    for i in range(n):
        q.put(i)


def put_mib(q, n):
    payload = b"x" * (1 << 20)
    for _ in range(n):
        q.put(payload)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=put_ints, args=(q, n))
    t = time.perf_counter()
    p.start()
    for _ in range(n):
        q.get()
    elapsed = time.perf_counter() - t
    p.join()
    print(f"python_queue_small {n / elapsed:.1f}", flush=True)

    q = ctx.Queue()
    p = ctx.Process(target=put_mib, args=(q, mib))
    t = time.perf_counter()
    p.start()
    for _ in range(mib):
        q.get()
    elapsed = time.perf_counter() - t
    p.join()
    print(f"python_queue_1mib {elapsed / mib:.9f}", flush=True)
