// S10: terminate(), then is_alive() (True until the child has been reaped), then join(), then
// is_alive() is False and exitcode is -SIGTERM. As in Python's documentation:
//   >>> p = multiprocessing.Process(target=time.sleep, args=(1000,))
//   >>> print(p, p.is_alive())   <Process ... initial> False
//   >>> p.start(); print(p, p.is_alive())   <Process ... started> True
//   >>> p.terminate(); print(p, p.is_alive())   (still True until reaped)
//   >>> p.join(); print(p, p.is_alive())   <Process ... stopped exitcode=-SIGTERM> False
#include <signal.h>

#include <chrono>
#include <iostream>
#include <thread>

#include <mproc/mproc.hpp>

void sleep_long(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    auto b = [](bool v) { return v ? "True" : "False"; };
    mproc::Process p(sleep_long, 1000.0);
    std::cout << p << " " << b(p.is_alive()) << std::endl;
    p.start();
    std::cout << p << " " << b(p.is_alive()) << std::endl;
    p.terminate();
    std::cout << "after terminate: " << p << " " << b(p.is_alive()) << std::endl;
    p.join();
    std::cout << p << " " << b(p.is_alive()) << std::endl;
    std::cout << "p.exitcode == -signal.SIGTERM: " << b(p.exitcode() == -SIGTERM) << std::endl;
}
