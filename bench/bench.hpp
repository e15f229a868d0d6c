// The sections of mproc-bench.
#pragma once

void run_process_bench(bool quick);
void run_connection_bench(bool quick);
void run_sync_bench(bool quick);
