#include <cstdio>

#include <mproc/mproc.hpp>

static void work(int x) { std::fflush(nullptr); (void)x; }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Process p(work, 1);
    p.start();
    p.join();
    mproc::Process s({.start_method = "spawn"}, work, 2);
    s.start();
    s.join();
    std::printf("consumer: child exited %d, spawn child exited %d (mproc %s)\n", p.exitcode().value_or(-1),
                s.exitcode().value_or(-1), MPROC_VERSION);
    return 0;
}
