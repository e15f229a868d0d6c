// S16: map takes one argument per task; starmap takes tuples; apply_async takes several.
//
// Python:
//   pool.starmap(add, [(1, 2), (3, 4), (5, 6)])   # [3, 7, 11]
//   pool.apply_async(add, (1, 2)).get()           # 3
#include <iostream>
#include <tuple>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

int add(int a, int b) { return a + b; }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Pool pool(2);
    std::cout << py::repr(pool.starmap(add, std::vector<std::tuple<int, int>>{{1, 2}, {3, 4}, {5, 6}})) << std::endl;
    std::cout << pool.apply_async(add, 1, 2).get() << std::endl;
}
