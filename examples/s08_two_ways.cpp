// S8: two ways to make a process: give Process a target function, or subclass Process and
// override run().
#include <iostream>

#include <mproc/mproc.hpp>

void greet(std::string who) { std::cout << "hello " << who << " from " << mproc::current_process().name() << std::endl; }

// The second way. (A subclass runs with the fork start method: a spawned child is a fresh
// program that could not rebuild the object, and start() says so.)
class Squarer : public mproc::Process {
public:
    explicit Squarer(int n) : Process({.name = "Squarer", .start_method = "fork"}), n_(n) {}
    void run() override {
        std::cout << n_ << " squared is " << n_ * n_ << " in " << mproc::current_process().name() << std::endl;
    }

private:
    int n_;
};

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Process p(greet, "bob");  // 1. a target function and its arguments
    p.start();
    p.join();
    Squarer s(7);                     // 2. a subclass overriding run()
    s.start();
    s.join();
    std::cout << "exit codes: " << *p.exitcode() << " " << *s.exitcode() << std::endl;
}
