// S4, across machines, the client program: connects to s04_manager_server's address with the
// authkey, puts jobs on the shared queue, works them off as a worker would, records results in
// the shared dict and prints them all.
//   s04_manager_client host port [authkey] [--stop]    (--stop: then tell the server to stop)
#include <cstring>
#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

namespace mm = mproc::managers;

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    if (argc < 3) {
        std::cerr << "usage: s04_manager_client host port [authkey] [--stop]\n";
        return 2;
    }
    const std::string host = argv[1];
    const int port = std::stoi(argv[2]);
    const std::string authkey = argc > 3 && std::strcmp(argv[3], "--stop") != 0 ? argv[3] : "s4-secret";
    const bool stop = std::strcmp(argv[argc - 1], "--stop") == 0;

    mm::BaseManager manager({.address = {host, port}, .authkey = authkey});
    manager.connect();  // a wrong address or authkey fails here, clearly
    auto jobs = manager.get<mm::QueueProxy<std::string>>("jobs");
    auto results = manager.get<mm::DictProxy<std::string, int>>("results");

    for (const char* job : {"Sam: 10", "Adam: 9", "Kevin: 9"}) jobs.put(job);
    while (!jobs.empty()) {
        const std::string job = jobs.get(true, std::chrono::seconds(10));
        results.set(job.substr(0, job.find(':')), std::stoi(job.substr(job.find(':') + 1)));
    }
    for (const auto& [name, score] : results.items()) std::cout << "Name: " << name << ", score " << score << std::endl;
    if (stop) manager.get<mm::EventProxy>("stop").set();
}
