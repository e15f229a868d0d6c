// S4, across machines, the server program: a manager sharing a queue of jobs, a dict of
// results and a stop event by name, on a TCP address with an authkey.
//   s04_manager_server [host [port [authkey]]]     (default 127.0.0.1, a free port, "s4-secret")
// It prints the address it listens on, then serves until a client sets "stop".
// The client program: s04_manager_client.
#include <iostream>
#include <string>
#include <thread>

#include <mproc/mproc.hpp>

namespace mm = mproc::managers;

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    const std::string host = argc > 1 ? argv[1] : "127.0.0.1";
    const int port = argc > 2 ? std::stoi(argv[2]) : 0;
    const std::string authkey = argc > 3 ? argv[3] : "s4-secret";

    // A host other than loopback is refused without an explicit authkey: here there is one.
    mm::BaseManager manager({.address = {host, port}, .authkey = authkey});
    manager.register_shared<mm::QueueProxy<std::string>>("jobs");
    manager.register_shared<mm::DictProxy<std::string, int>>("results");
    manager.register_shared<mm::EventProxy>("stop");
    mm::Server server = manager.get_server();
    std::cout << "serving jobs, results and stop on " << server.address().str() << std::endl;

    std::thread serving([&] { server.serve_forever(); });
    {
        // This program is a client of its own server too: it waits for the stop event.
        mm::BaseManager self({.address = server.address(), .authkey = authkey});
        self.connect();
        self.get<mm::EventProxy>("stop").wait();
        std::cout << "a client asked the server to stop; results held: " << self.get<mm::DictProxy<std::string, int>>("results").size()
                  << std::endl;
    }
    server.stop();
    serving.join();
}
