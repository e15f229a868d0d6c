// S24: start processes under the main guard, and use no more processes than cores.
// mproc::init(argc, argv), first in main, is Python's `if __name__ == "__main__":`. A spawned
// child re-runs this program; init sends it to its job before the rest of main can run, so the
// line below prints once, not once per child.
#include <iostream>
#include <vector>

#include <mproc/mproc.hpp>

void work(int i) { std::cout << "worker " << i << " in " << mproc::current_process().name() << std::endl; }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::cout << "main body runs once (start method " << mproc::get_start_method() << ")" << std::endl;
    const int n = mproc::process_cpu_count();  // the CPUs this process may use
    std::cout << "cpu_count=" << mproc::cpu_count() << " process_cpu_count=" << n << std::endl;
    std::vector<mproc::Process> ps;
    for (int i = 0; i < n; ++i) ps.emplace_back(work, i);
    for (auto& p : ps) {
        p.start();
        p.join();
    }
    std::cout << "started " << n << " workers, one per core" << std::endl;
}
