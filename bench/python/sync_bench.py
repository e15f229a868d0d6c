"""Python's side of bench/sync_bench.cpp: multiprocessing.Value and Event on this machine.

Prints "python_value_ops <ops per second>" (two processes each doing `with v.get_lock():
v.value += 1`) and "python_event_rt_pinned <median seconds>" (a ping-pong of two Events between
two processes on CPU 0). Usage: sync_bench.py <increments per process> <round trips>
Each figure's line ends with the number of runs it is the median of (1: one run), which
mproc-bench --data records.
"""
import multiprocessing as mp
import os
import statistics
import sys
import time


def add(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def pong(ping, pong_, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong_.set()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    rts = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    ctx = mp.get_context("fork")
    v = ctx.Value("i", 0)
    ps = [ctx.Process(target=add, args=(v, n)) for _ in range(2)]
    t = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print(f"python_value_ops {2 * n / (time.perf_counter() - t):.1f} 1", flush=True)

    os.sched_setaffinity(0, {0})
    ping, pong_ = ctx.Event(), ctx.Event()
    p = ctx.Process(target=pong, args=(ping, pong_, rts))
    p.start()
    times = []
    for _ in range(rts):
        t = time.perf_counter()
        ping.set()
        pong_.wait()
        pong_.clear()
        times.append(time.perf_counter() - t)
    p.join()
    print(f"python_event_rt_pinned {statistics.median(times):.9f} {rts}", flush=True)
