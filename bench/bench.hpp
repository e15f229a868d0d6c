// The sections of mproc-bench.
#pragma once

void run_process_bench(bool quick);
void run_connection_bench(bool quick);
void run_sync_bench(bool quick);
void run_queue_bench(bool quick);

namespace bench {
// Seconds per 1 MiB message over a bare byte-stream socketpair (connection_bench.cpp).
double bare_socketpair_seconds_per_mib(int mib);
}
