"""Python's side of bench/futures_bench.cpp: concurrent.futures on this machine.

Prints "python_process_map" <tasks per second> (ProcessPoolExecutor(2).map, chunksize 1),
"python_process_rt" <median seconds> (submit().result() round trip) and
"python_thread_submit" <tasks per second> (ThreadPoolExecutor(2): submit n, then every result).
Usage: futures_bench.py <map tasks> <round trips> <thread tasks>
Each figure's line ends with the number of runs it is the median of (1: one run), which
mproc-bench --data records.
"""
import concurrent.futures as cf
import multiprocessing as mp
import statistics
import sys
import time


def square(x):
    return x * x


if __name__ == "__main__":
    n_map = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rts = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    n_thread = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        rates = []
        for r in range(3):
            t = time.perf_counter()
            list(ex.map(square, range(n_map)))
            rates.append(n_map / (time.perf_counter() - t))
        print(f"python_process_map {statistics.median(rates):.1f} {len(rates)}", flush=True)
        times = []
        for _ in range(rts):
            t = time.perf_counter()
            ex.submit(square, 7).result()
            times.append(time.perf_counter() - t)
        print(f"python_process_rt {statistics.median(times):.9f} {rts}", flush=True)
    with cf.ThreadPoolExecutor(2) as tex:
        rates = []
        for r in range(3):
            t = time.perf_counter()
            fs = [tex.submit(square, i) for i in range(n_thread)]
            for f in fs:
                f.result()
            rates.append(n_thread / (time.perf_counter() - t))
        print(f"python_thread_submit {statistics.median(rates):.1f} {len(rates)}", flush=True)
