// S13: a pool made inside a class method, and a pool made inside a pool task. Python refuses
// the second ("daemonic processes are not allowed to have children"); mproc allows both.
#include <iostream>
#include <numeric>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

int square(int x) { return x * x; }

// A task that uses a pool of its own.
int sum_of_squares(int n) {
    mproc::Pool inner(2);
    std::vector<int> xs(static_cast<std::size_t>(n));
    std::iota(xs.begin(), xs.end(), 1);
    const std::vector<int> r = inner.map(square, xs);
    return std::accumulate(r.begin(), r.end(), 0);
}

class Report {
public:
    std::vector<int> squares(std::vector<int> xs) {
        mproc::Pool pool(2);  // made in a method, used, gone when it returns
        return pool.map(square, xs);
    }
};

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::cout << "pool inside a method: " << py::repr(Report().squares({1, 2, 3})) << std::endl;
    mproc::Pool outer(2);
    const std::vector<int> r = outer.map(sum_of_squares, std::vector<int>{3, 4});
    std::cout << "pools inside pool tasks: " << py::repr(r) << std::endl;
}
