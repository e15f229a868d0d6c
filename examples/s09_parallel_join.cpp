// S9: join() makes the parent wait. Start them all, then join them all, and they run in
// parallel: four children that each sleep 0.5 s take about 0.5 s together, not 2 s.
#include <chrono>
#include <iomanip>
#include <iostream>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

void nap(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    const int n = 4;
    const double each = 0.5;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<mproc::Process> ps;
    for (int i = 0; i < n; ++i) ps.emplace_back(nap, each);
    for (auto& p : ps) p.start();  // start them all...
    for (auto& p : ps) p.join();   // ...then join them all
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << n << " children slept " << each << " s each; wall time " << std::fixed
              << std::setprecision(2) << wall << " s" << std::endl;
    std::cout << "ran in parallel: " << (wall < each * 2 ? "True" : "False") << std::endl;
}
