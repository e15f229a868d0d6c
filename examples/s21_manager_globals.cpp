// S21: a Manager shares "global variables" between processes through proxies: a Namespace of
// named, typed attributes that children read and set, and a dict each child writes its result
// to.
#include <iostream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

namespace mm = mproc::managers;

void worker(mm::NamespaceProxy globals, mm::DictProxy<std::string, int> results, int i) {
    const int base = globals.get<int>("base");
    results.set("worker-" + std::to_string(i), base + i);
    if (i == 0) globals.set("last_message", std::string("hello from worker 0"));
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mm::SyncManager manager = mproc::Manager();
    mm::NamespaceProxy globals = manager.Namespace();
    globals.set("base", 100);
    globals.set("title", std::string("shared settings"));
    auto results = manager.dict<std::string, int>();

    std::vector<mproc::Process> ps;
    for (int i = 0; i < 3; ++i) ps.emplace_back(worker, globals, results, i);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();

    std::cout << "title: " << globals.get<std::string>("title") << std::endl;
    std::cout << "last_message (set by a child): " << globals.get<std::string>("last_message") << std::endl;
    for (const auto& [k, v] : results.items()) std::cout << k << " = " << v << std::endl;
}
