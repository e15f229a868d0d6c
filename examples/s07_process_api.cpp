// S7: every parameter, method and attribute of Process.
//   Process(group, target, name, args, kwargs, *, daemon): target and args are the constructor's
//   arguments, name and daemon an options struct; start, run, terminate, kill, is_alive,
//   join(timeout), close; name, daemon, pid, exitcode, authkey, sentinel.
// Python's terminate() leaves the terminated process's children running as orphans; here they
// end with it (the last part).
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

struct Order {  // "kwargs": a struct argument
    std::string item;
    int quantity = 0;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(item, quantity);
    }
};

void worker(std::string greeting, Order order) {
    auto me = mproc::current_process();
    std::cout << greeting << " from " << me.name() << ": " << order.quantity << " x " << order.item
              << " (daemon=" << (me.daemon() ? "True" : "False") << ")" << std::endl;
}

void sleeper() {
    for (;;) pause();
}

// Starts a grandchild that sleeps, reports its pid, then sleeps too.
void parent_of_sleeper(mproc::Connection report) {
    mproc::Process grandchild({.name = "grandchild"}, sleeper);
    grandchild.start();
    report.send(*grandchild.pid());
    for (;;) pause();
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);

    mproc::Process p({.name = "worker-1", .daemon = false}, worker, "hello", Order{"apples", 3});
    std::cout << "before start: " << p << std::endl;
    std::cout << "name=" << p.name() << " daemon=" << (p.daemon() ? "True" : "False")
              << " pid=" << (p.pid() ? std::to_string(*p.pid()) : "None")
              << " exitcode=" << (p.exitcode() ? std::to_string(*p.exitcode()) : "None") << std::endl;
    std::cout << "authkey is " << p.authkey().size() << " bytes, the same as the parent's: "
              << (p.authkey() == mproc::current_process().authkey() ? "True" : "False") << std::endl;
    p.start();
    p.join(10s);
    std::cout << "after join: " << p << std::endl;
    std::cout << "exitcode=" << *p.exitcode() << " is_alive=" << (p.is_alive() ? "True" : "False")
              << std::endl;
    p.close();

    // join(timeout) returns when the time is up; the process still runs.
    mproc::Process s({.name = "sleeper", .daemon = true}, sleeper);
    s.start();
    s.join(200ms);
    std::cout << "after join(0.2): is_alive=" << (s.is_alive() ? "True" : "False") << std::endl;
    pollfd fd{s.sentinel(), POLLIN, 0};
    std::cout << "sentinel readable while running: " << (poll(&fd, 1, 0) == 1 ? "True" : "False")
              << std::endl;
    s.kill();
    s.join();
    std::cout << "after kill: " << s << std::endl;

    // terminate() ends the process and, unlike Python, its children too.
    auto [report, report_end] = mproc::Pipe();
    mproc::Process t({.name = "parent"}, parent_of_sleeper, std::move(report_end));
    t.start();
    const int grandchild = report.recv<int>();
    t.terminate();
    t.join();
    std::cout << "terminated: " << t << std::endl;
    const long gfd = syscall(SYS_pidfd_open, grandchild, 0);
    bool gone = gfd < 0;
    if (!gone) {
        pollfd g{static_cast<int>(gfd), POLLIN, 0};
        gone = poll(&g, 1, 2000) == 1;  // its watchdog ends it within moments
        close(static_cast<int>(gfd));
    }
    std::cout << "grandchild still running after terminate: " << (gone ? "False" : "True") << std::endl;
}
