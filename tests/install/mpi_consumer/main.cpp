// A program of another CMake project that uses the installed mpi component (issue 16): without
// mpiexec its pool runs on local processes.
#include <cstdio>

#include <mproc/mpi.hpp>
#include <mproc/mproc.hpp>

int square(int x) { return x * x; }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::mpi::MPIPoolExecutor ex(2);
    std::printf("mpi consumer: %d, distributed %d\n", ex.submit(square, 9).result(), ex.distributed() ? 1 : 0);
}
