// S20: multiprocessing.Lock used like the thread Lock, and daemon processes.
// mproc goes further: a process killed while it holds the Lock does not block the others
// forever (with Python's Lock the next acquire() never returns).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <mutex>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

void printer(mproc::Lock lock, int i) {
    std::lock_guard g(lock);  // one process prints at a time
    std::cout << "process " << i << " holds the lock" << std::endl;
}

void take_and_hang(mproc::Lock lock, mproc::Event held) {
    lock.acquire();
    held.set();
    for (;;) pause();  // never releases
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Lock lock;
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 3; ++i) {
        ps.emplace_back(printer, lock, i);
        ps.back().start();
        ps.back().join();  // in order, so the output reads the same every time
    }

    // A daemon process: terminated when the main program exits, if it is still running.
    mproc::Event held;
    mproc::Process holder({.name = "holder", .daemon = true}, take_and_hang, lock, held);
    std::cout << "holder is daemonic: " << (holder.daemon() ? "True" : "False") << std::endl;
    holder.start();
    held.wait();
    std::cout << "holder has the lock; acquire(timeout=0.1) -> "
              << (lock.acquire(true, 100ms) ? "True" : "False") << std::endl;
    holder.kill();  // dies holding the lock
    holder.join();
    std::cout << "holder killed: exitcode " << *holder.exitcode() << std::endl;
    const bool got = lock.acquire(true, 5s);
    std::cout << "acquire after the holder died -> " << (got ? "True" : "False")
              << "; owner_died() -> " << (lock.owner_died() ? "True" : "False") << std::endl;
    lock.release();
}
