// S6, second part: a C++ program and a Python program exchange messages. The C++ side is an
// mproc Listener with an authkey; the Python side is Python's own
// multiprocessing.connection.Client (examples/python/peer.py). The framing and the HMAC
// handshake are Python's, so neither side knows the other is not its own kind.
#include <unistd.h>

#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

#include "print.hpp"

namespace mc = mproc::connection;

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mc::Listener listener({"127.0.0.1", 0}, "s3cret");
    std::cout << "mproc listens on " << listener.address().str() << std::endl;

    // The Python program runs in a child started with fork, which then becomes python3; like
    // every mproc child it dies if this program dies.
    const std::string script = py::here() + "/python/peer.py";
    mproc::Process python({.name = "python-peer", .start_method = "fork"}, [](std::string script, int port) {
        execlp("python3", "python3", script.c_str(), std::to_string(port).c_str(), "s3cret", nullptr);
        std::exit(127);
    }, script, listener.address().port);
    python.start();

    mc::Connection conn = listener.accept(std::chrono::seconds(30));
    for (;;) {
        const std::string q = conn.recv_bytes();
        if (q == "END") break;
        std::cout << "mproc got:     " << q << std::endl;
        const std::string a = q.find("6 times 7") != std::string::npos ? "42" : "C++, speaking Python's wire format";
        std::cout << "mproc replies: " << a << std::endl;
        conn.send_bytes(a);
    }
    python.join();
    std::cout << "python exited with " << python.exitcode().value_or(-1) << std::endl;
}
