// mproc/detail/progress_bar.hpp: a pool call's progress on a terminal (not API).
#pragma once

#include <chrono>
#include <cstddef>

namespace mproc::detail::pool {

// Draws "done/total, rate, time left" on stderr when it is a terminal (src/pool/progress_bar.cpp).
class ProgressBar {
public:
    ProgressBar(std::size_t total, bool known_total);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    void set_total(std::size_t total);
    void update(std::size_t done);  // throttled: draws at most ten times a second
    static bool wanted();           // stderr is a terminal

private:
    void draw(std::size_t done, bool final);
    std::size_t total_;
    bool known_;
    std::size_t last_done_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mproc::detail::pool
