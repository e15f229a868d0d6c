// S14: Python cannot send a lambda to another process (pickle refuses it). Here functions and
// captureless lambdas go to a child under every start method, and lambdas with captures run in
// a fork-started child; with spawn, a capturing lambda is refused with a message saying why.
#include <iostream>
#include <stdexcept>

#include <mproc/mproc.hpp>

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    for (const char* method : {"fork", "spawn", "forkserver"}) {
        mproc::Process p({.start_method = method}, [](int x, std::string m) {
            std::cout << "captureless lambda under " << m << ": " << x << " squared is " << x * x << std::endl;
        }, 12, std::string(method));
        p.start();
        p.join();
    }

    int base = 100;  // a variable the lambdas capture (a constant would need no capture)
    mproc::Process f({.start_method = "fork"}, [base](int x) {
        std::cout << "capturing lambda under fork: base + x = " << base + x << std::endl;
    }, 5);
    f.start();
    f.join();

    mproc::Process s({.start_method = "spawn"}, [base](int x) { std::cout << base + x << std::endl; }, 5);
    try {
        s.start();
    } catch (const std::logic_error& e) {
        std::cout << "capturing lambda under spawn refused: " << e.what() << std::endl;
    }
}
