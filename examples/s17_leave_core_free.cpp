// S17: Pool(processes=cpu_count() - 1), to leave a core free for the rest of the machine.
#include <algorithm>
#include <iostream>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

int square(int x) { return x * x; }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    const int n = std::max(1, mproc::cpu_count() - 1);  // at least one, on a one-core machine
    mproc::Pool pool(n);
    std::cout << "cpu_count=" << mproc::cpu_count() << ", pool of " << pool.processes() << std::endl;
    std::cout << py::repr(pool.map(square, std::vector<int>{1, 2, 3, 4})) << std::endl;
}
