// S3: Value('d', 10): a shared value with an initial value, changed by children under its lock.
#include <iostream>
#include <mutex>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

void add_one_hundred_times(mproc::Value<double> v) {
    for (int i = 0; i < 100; ++i) {
        std::lock_guard g(v.get_lock());  // the read and the write as one step
        v.get_obj() += 1.0;
    }
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Value<double> v(10.0);  // Value('d', 10)
    std::cout << "initial value: " << py::repr(v.value()) << std::endl;
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 4; ++i) ps.emplace_back(add_one_hundred_times, v);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    std::cout << "after 4 processes added 1.0 a hundred times each: " << py::repr(v.value()) << std::endl;
}
