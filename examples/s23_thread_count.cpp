// S23: the rule of thumb for threads that wait as well as compute:
//   best thread count = ((wait time + CPU time) / CPU time) x CPU count.
// mproc::threading::suggested_thread_count computes it; here it sizes a ThreadPoolExecutor for
// tasks that compute about 1 ms and then wait about 4 ms (a sleep stands for the network),
// and the run with the suggested count is compared with one thread per CPU.
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

namespace cf = mproc::futures;
namespace th = mproc::threading;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kCpu = 1ms;
constexpr auto kWait = 4ms;

// Spins for the CPU part (on the thread's own CPU clock, so waiting for a core does not count),
// then sleeps for the waiting part.
int task(int x) {
    timespec start{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    volatile long spin = 0;
    for (;;) {
        timespec now{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
        const auto used = std::chrono::seconds(now.tv_sec - start.tv_sec) + std::chrono::nanoseconds(now.tv_nsec - start.tv_nsec);
        if (used >= kCpu) break;
        spin = spin + 1;
    }
    std::this_thread::sleep_for(kWait);
    return x;
}

double run_with(int threads, int tasks) {
    cf::ThreadPoolExecutor ex(threads);
    const auto t0 = Clock::now();
    std::vector<cf::Future<int>> fs;
    for (int i = 0; i < tasks; ++i) fs.push_back(ex.submit(task, i));
    for (auto& f : fs) f.result();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    const int cpus = mproc::process_cpu_count();
    std::cout << "rule of thumb: threads = ((wait + CPU) / CPU) x CPUs" << std::endl;
    std::cout << "CPU-bound (wait/CPU = 0) on 4 CPUs: " << th::suggested_thread_count(0.0, 4) << std::endl;
    std::cout << "wait/CPU = 4 on 2 CPUs: " << th::suggested_thread_count(4.0, 2) << std::endl;
    std::cout << "wait 8 ms, CPU 2 ms, on 8 CPUs: " << th::suggested_thread_count(8ms, 2ms, 8) << std::endl;

    const int n = th::suggested_thread_count(kWait, kCpu);
    std::cout << "this machine: " << cpus << " CPUs; tasks of 1 ms CPU + 4 ms wait -> " << n << " threads" << std::endl;
    const int tasks = 40 * n;
    const double one_per_cpu = run_with(cpus, tasks);
    const double suggested = run_with(n, tasks);
    std::cout << tasks << " tasks: " << cpus << " threads " << static_cast<int>(one_per_cpu * 1000) << " ms, " << n
              << " threads " << static_cast<int>(suggested * 1000) << " ms (" << (one_per_cpu / suggested)
              << "x faster)" << std::endl;
}
