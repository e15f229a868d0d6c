// A test helper: connects to s04_manager_server, says "waiting", and blocks in a get on the
// shared queue that nobody feeds; prints how the call ended and after how long.
//   manager_probe host port authkey
#include <chrono>
#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    if (argc < 4) return 2;
    namespace mm = mproc::managers;
    mm::BaseManager m({.address = {argv[1], std::stoi(argv[2])}, .authkey = argv[3]});
    m.connect();
    auto jobs = m.get<mm::QueueProxy<std::string>>("jobs");
    std::cout << "waiting" << std::endl;
    const auto t = std::chrono::steady_clock::now();
    try {
        (void)jobs.get();
        std::cout << "got a job" << std::endl;
    } catch (const mproc::ProcessError& e) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
        std::cout << "failed after " << s << " s: " << e.what() << std::endl;
    }
}
