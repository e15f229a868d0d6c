"""Python's side of bench/process_bench.cpp: Process start+join under each start method.

Prints "python_<method> <median seconds>" lines. Usage: process_bench.py <runs>
Each figure's line ends with the number of runs it is the median of (1: one run), which
mproc-bench --data records.
"""
import multiprocessing as mp
import statistics
import sys
import time


def noop():
    pass


def median_start_join(method, runs):
    ctx = mp.get_context(method)
    for _ in range(2):  # warm up (the forkserver starts on first use)
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for method in ("fork", "spawn", "forkserver"):
        # spawn costs ~100 ms a run: fewer of them keep the comparison short
        n = max(3, runs // 4) if method == "spawn" else runs
        print(f"python_{method} {median_start_join(method, n):.6f} {n}", flush=True)
