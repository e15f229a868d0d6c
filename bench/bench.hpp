// The sections of mproc-bench.
#pragma once

#include <functional>
#include <vector>

void run_process_bench(bool quick);
void run_connection_bench(bool quick);
void run_sync_bench(bool quick);
void run_queue_bench(bool quick);
void run_pool_bench(bool quick);
void run_futures_bench(bool quick);
void run_managers_bench(bool quick);
// mpi_bench.cpp, where mproc was built with MPI (MPROC_BENCH_MPI).
void run_mpi_bench(bool quick);
int run_mpi_job(bool quick);

#include <initializer_list>
#include <sys/types.h>

namespace bench {
// Seconds per 1 MiB message over a bare byte-stream socketpair (connection_bench.cpp).
double bare_socketpair_seconds_per_mib(int mib);
// A bare echo child (fork) over raw descriptors: reads 8 bytes, writes them back, until end of
// file; it closes parents_ends first. bare_rt is one round trip with it (connection_bench.cpp).
pid_t bare_echo(int in, int out, std::initializer_list<int> parents_ends);
void bare_rt(int out, int in);
// Medians of `runs` interleaved round trips: a bare pipe echo child's, then ours().
std::vector<double> round_trips_beside_bare_pipe(int runs, const std::function<void()>& ours);
// The same with one Unix stream socketpair.
std::vector<double> round_trips_beside_bare_socketpair(int runs, const std::function<void()>& ours);
// The floor under any hand-off between two processes: a word handed to a forked child and back
// through shared memory, both spinning. `batches` timings of 100 round trips each, per round trip.
std::vector<double> spin_floor_round_trips(int batches);
// The round-trip benchmark of the pool and the executor: a spin floor block, then `runs`
// interleaved round trips of a bare pipe echo and ours(), then a spin floor block again.
// {bare pipe, ours, spin floor} medians.
std::vector<double> round_trips_beside_floors(int runs, const std::function<void()>& ours);
}
