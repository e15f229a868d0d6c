// S11: name and pid; getpid()/getppid() inside the children: each child's parent pid is the
// main process's pid.
#include <unistd.h>

#include <iostream>

#include <mproc/mproc.hpp>

void worker(std::string label) {
    std::cout << "ID of process running " << label << ": " << getpid() << "; its parent: "
              << mproc::parent_process()->pid().value() << " (" << mproc::parent_process()->name()
              << ")" << std::endl;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::cout << "ID of main process: " << getpid() << std::endl;
    mproc::Process p1(worker, "worker1");
    mproc::Process p2(worker, "worker2");
    p1.start();
    p1.join();  // one at a time, so the lines come out in order
    p2.start();
    p2.join();
    std::cout << "ID of process p1: " << *p1.pid() << " named " << p1.name() << std::endl;
    std::cout << "ID of process p2: " << *p2.pid() << " named " << p2.name() << std::endl;
    std::cout << "Both processes finished execution!" << std::endl;
    std::cout << "Process p1 is alive: " << (p1.is_alive() ? "True" : "False") << std::endl;
    std::cout << "Process p2 is alive: " << (p2.is_alive() ? "True" : "False") << std::endl;
}
