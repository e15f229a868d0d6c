#include <mproc/pool.hpp>
#include <vector>
int square(int x) { return x * x; }
int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Pool pool(2);
    std::vector<int> xs{1, 2, 3};
    auto r = pool.map(square, xs);
    return r[2] == 9 ? 0 : 1;
}
