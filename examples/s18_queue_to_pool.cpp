// S18: a Queue given to pool tasks. Python refuses a plain Queue here ("Queue objects should
// only be shared between processes through inheritance") and points to Manager().Queue();
// mproc passes a plain Queue. get() blocks, so the reader checks empty() first or gives a
// timeout, as the seed advises.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

void report(mproc::Queue<std::string> q, int task) {
    q.put("task " + std::to_string(task) + " done in " + mproc::current_process().name());
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Queue<std::string> q;
    {
        mproc::Pool pool(2);
        std::vector<mproc::AsyncResult<void>> rs;
        for (int i = 0; i < 4; ++i) rs.push_back(pool.apply_async(report, q, i));
        for (auto& r : rs) r.get();
    }
    int n = 0;
    while (!q.empty()) {
        (void)q.get();
        ++n;
    }
    std::cout << "a plain Queue went to pool tasks: " << n << " messages" << std::endl;
    try {
        q.get(true, std::chrono::milliseconds(100));
    } catch (const mproc::Empty&) {
        std::cout << "get with a timeout on an empty queue: Empty" << std::endl;
    }
}
