"""Python's side of bench/pool_bench.cpp: multiprocessing.Pool(2) on this machine.

Prints "python_map_default" and "python_map_chunksize1" <tasks per second> (map of x*x with
the default chunksize, then chunksize 1), "python_apply_rt" <median seconds> (apply_async().get()
round trip) and "python_cpu_speedup" (CPU-bound tasks on Pool(2) against one process).
Usage: pool_bench.py <tasks, default chunksize> <tasks, chunksize 1> <round trips>
Each figure's line ends with the number of runs it is the median of (1: one run), which
mproc-bench --data records.
"""
import math
import multiprocessing as mp
import statistics
import sys
import time


def square(x):
    return x * x


def burn(seed):
    acc = float(seed)
    for i in range(1, 400_000):
        acc += math.sqrt(i + acc * 1e-9)
    return acc


def rate(pool, n, chunksize):
    t = time.perf_counter()
    r = pool.map(square, range(n), chunksize)
    s = time.perf_counter() - t
    assert r[-1] == (n - 1) * (n - 1)
    return n / s


if __name__ == "__main__":
    many = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    ones = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rts = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    with mp.get_context("fork").Pool(2) as pool:
        for _ in range(2):  # warm-up, as on the C++ side
            rate(pool, many, None)
            rate(pool, ones, 1)
        print(f"python_map_default {statistics.median(rate(pool, many, None) for _ in range(5)):.1f} 5", flush=True)
        print(f"python_map_chunksize1 {statistics.median(rate(pool, ones, 1) for _ in range(5)):.1f} 5", flush=True)
        times = []
        for _ in range(rts):
            t = time.perf_counter()
            pool.apply_async(square, (7,)).get()
            times.append(time.perf_counter() - t)
        print(f"python_apply_rt {statistics.median(times):.9f} {rts}", flush=True)
        seeds = list(range(1, 9))
        t = time.perf_counter()
        serial = [burn(s) for s in seeds]
        one = time.perf_counter() - t
        t = time.perf_counter()
        pooled = pool.map(burn, seeds, 1)
        two = time.perf_counter() - t
        assert pooled == serial
        print(f"python_cpu_speedup {one / two:.3f} 1", flush=True)
