// S19: threading. Threads that share data under a Lock, a recursive RLock, a Condition between
// a producer and a consumer, and daemon versus non-daemon threads at exit. The counter raised by
// N threads under the Lock ends exact.
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

namespace th = mproc::threading;

constexpr int kThreads = 4;
constexpr int kRaises = 100000;

long counter = 0;
th::Lock counter_lock;

void raise_counter(int times) {
    for (int i = 0; i < times; ++i) {
        counter_lock.acquire();  // Python: with lock: counter += 1
        ++counter;
        counter_lock.release();
    }
}

// An RLock may be taken again by the thread that holds it: a recursive function can lock.
th::RLock tree_lock;
int depth(int n) {
    std::lock_guard g(tree_lock);
    return n == 0 ? 0 : 1 + depth(n - 1);
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::cout << "main thread: " << th::current_thread().name() << std::endl;

    std::vector<th::Thread> ts;
    for (int i = 0; i < kThreads; ++i) ts.emplace_back(raise_counter, kRaises);
    for (auto& t : ts) t.start();
    for (auto& t : ts) t.join();
    std::cout << "counter raised by " << kThreads << " threads x " << kRaises << " under a Lock: " << counter
              << " (exact: " << py::repr(counter == long(kThreads) * kRaises) << ")" << std::endl;

    th::Thread deep([] { std::cout << "RLock taken 5 deep by one thread: " << depth(5) << std::endl; });
    deep.start();
    deep.join();

    // Condition: the consumer sleeps until the producer says there is something.
    th::Condition cv;
    std::vector<int> box, got;
    bool closed = false;
    th::Thread consumer({.name = "consumer"}, [&] {
        std::unique_lock lk(cv);
        while (true) {
            cv.wait_for([&] { return !box.empty() || closed; });
            got.insert(got.end(), box.begin(), box.end());
            box.clear();
            if (closed) return;
        }
    });
    consumer.start();
    for (int i = 0; i < 10; ++i) {
        std::lock_guard g(cv);
        box.push_back(i * i);
        cv.notify();
    }
    {
        std::lock_guard g(cv);
        closed = true;
        cv.notify_all();
    }
    consumer.join();
    std::cout << "Condition: the consumer got " << py::repr(got) << std::endl;

    // A daemon thread is left running at exit; a non-daemon one is waited for, as in Python.
    th::Event never;
    th::Thread heartbeat({.name = "heartbeat", .daemon = true}, [never]() mutable { never.wait(); });
    heartbeat.start();
    th::Event main_done;
    th::Thread writer({.name = "writer"}, [main_done]() mutable {
        main_done.wait();
        std::cout << "writer (non-daemon) finished after main returned; the program waited for it" << std::endl;
    });
    writer.start();
    std::cout << "threads alive: " << th::active_count() << "; heartbeat is daemon: "
              << py::repr(heartbeat.daemon()) << ", writer is daemon: " << py::repr(writer.daemon()) << std::endl;
    std::cout << "main returns" << std::endl;
    main_done.set();
    return 0;  // exit waits for writer, not for heartbeat
}
