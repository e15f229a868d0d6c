"""Python's side of bench/queue_bench.cpp: multiprocessing.Queue on this machine.

Prints "python_queue_small <messages per second>" (one producer process putting small ints,
this process getting them) and "python_queue_1mib <seconds per 1 MiB message>".
Usage: queue_bench.py <small messages> <MiB>
Each figure's line ends with the number of runs it is the median of (1: one run), which
mproc-bench --data records.
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


def one_producer_to_here(ctx, target, n):
    """Seconds for a producer process to put n items and this process to get them."""
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(q, n))
    t = time.perf_counter()
    p.start()
    for _ in range(n):
        q.get()
    elapsed = time.perf_counter() - t
    p.join()
    return elapsed


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    ctx = mp.get_context("fork")
    print(f"python_queue_small {n / one_producer_to_here(ctx, put_ints, n):.1f} 1", flush=True)
    print(f"python_queue_1mib {one_producer_to_here(ctx, put_mib, mib) / mib:.9f} 1", flush=True)
