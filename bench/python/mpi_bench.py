"""The rival of mproc-bench's mpi section: mpi4py.futures on this machine, in its static mode.

Run as `mpiexec -n 2 /usr/bin/python3 -m mpi4py.futures mpi_bench.py ...`: rank 0 runs this
script, rank 1 serves tasks, one at a time, as mproc::mpi's executor does under the same line.
Prints, in order, lines of "name value":
  mpi4py_futures_worker_pid <pid of the worker rank> (found by a task, as os.getpid there)
  mpi4py_futures_idle_worker_cpu <CPUs used by the idle worker rank, /proc utime+stime>
  mpi4py_futures_idle_main_cpu <CPUs used by rank 0 itself over the same time, main asleep>
  mpi4py_futures_rt <median seconds of submit(f, 7).result()>
  mpi4py_futures_map <median tasks per second of executor.map(f, range(n), chunksize=1)>
  mpi4py_futures_arg <median GiB per second of submit(len, <arg MiB> of bytes).result()>
  mpi4py_futures_arg_over_2gib_ok <1 if a 2 GiB + 1 MiB bytes argument arrived, else 0>
and lines starting with "#" that say how a failure failed (a parser of "name number" skips them).
Usage: mpi_bench.py <round trips> <map tasks> <arg MiB> <arg runs> <idle seconds> [over-2gib 0|1]
The rt, map and arg lines end with the number of runs their figure is the median of, which
mproc-bench --data records.
"""
import os
import statistics
import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def ident(x):
    return x


def length(b):
    return len(b)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime, the stat fields 14 and 15, are the 12th and 13th after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pids, seconds):
    before = [cpu_seconds(p) for p in pids]
    t = time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - t
    return [(cpu_seconds(p) - b) / wall for p, b in zip(pids, before)]


if __name__ == "__main__":
    if MPI.COMM_WORLD.Get_size() < 2:
        # Without worker ranks the executor would spawn them, which is not what is compared.
        print("# no worker rank: run under mpiexec -n 2 python3 -m mpi4py.futures", flush=True)
        sys.exit(2)
    rts = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    n_map = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    arg_mib = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    arg_runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    idle_s = float(sys.argv[5]) if len(sys.argv) > 5 else 5.0
    over_2gib = (sys.argv[6] != "0") if len(sys.argv) > 6 else True

    with MPIPoolExecutor() as ex:
        worker = ex.submit(os.getpid).result()
        for _ in range(200):
            ex.submit(ident, 7).result()
        print(f"mpi4py_futures_worker_pid {worker}", flush=True)
        # The worker's pid is only readable here when it runs on this host.
        if idle_s > 0 and os.path.exists(f"/proc/{worker}/stat"):
            w, m = idle_cpu([worker, os.getpid()], idle_s)
            print(f"mpi4py_futures_idle_worker_cpu {w:.4f}", flush=True)
            print(f"mpi4py_futures_idle_main_cpu {m:.4f}", flush=True)

        times = []
        for _ in range(rts):
            t = time.perf_counter()
            ex.submit(ident, 7).result()
            times.append(time.perf_counter() - t)
        print(f"mpi4py_futures_rt {statistics.median(times):.9f} {rts}", flush=True)

        rates = []
        for _ in range(3):
            t = time.perf_counter()
            out = list(ex.map(ident, range(n_map), chunksize=1))
            rates.append(n_map / (time.perf_counter() - t))
            if out[-1] != n_map - 1:
                sys.exit("map returned the wrong values")
        print(f"mpi4py_futures_map {statistics.median(rates):.1f} {len(rates)}", flush=True)

        arg = bytes(arg_mib << 20)
        times = []
        for _ in range(arg_runs):
            t = time.perf_counter()
            if ex.submit(length, arg).result() != len(arg):
                sys.exit("the argument arrived with the wrong length")
            times.append(time.perf_counter() - t)
        del arg
        print(f"mpi4py_futures_arg {(arg_mib / 1024) / statistics.median(times):.4f} {arg_runs}", flush=True)

        if over_2gib:
            arg = bytes((2 << 30) + (1 << 20))
            t = time.perf_counter()
            try:
                ok = ex.submit(length, arg).result() == len(arg)
                print(f"# 2 GiB + 1 MiB argument arrived in {time.perf_counter() - t:.2f} s", flush=True)
            except Exception as e:
                ok = False
                print(f"# 2 GiB + 1 MiB argument failed after {time.perf_counter() - t:.2f} s: "
                      f"{type(e).__name__}: {e}", flush=True)
            del arg
            # Whether the executor is still usable after that failure.
            try:
                alive = ex.submit(ident, 7).result(timeout=30) == 7
            except Exception as e:
                alive = False
                print(f"# the next task failed: {type(e).__name__}: {e}", flush=True)
            print(f"# the executor {'goes on' if alive else 'is broken'} after it", flush=True)
            print(f"mpi4py_futures_arg_over_2gib_ok {int(ok)}", flush=True)
