// src/pool/progress_bar.cpp: "done/total, rate, time left" on a terminal's stderr.

#include <cstdio>
#include <string>

#include "mproc/detail/progress_bar.hpp"
#include "platform/platform.hpp"

namespace mproc::detail::pool {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

ProgressBar::ProgressBar(std::size_t total, bool known_total)
    : total_(total), known_(known_total), start_(Clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
    draw(last_done_, true);
}

bool ProgressBar::wanted() { return platform::is_terminal(2); }

void ProgressBar::set_total(std::size_t total) {
    total_ = total;
    known_ = true;
}

void ProgressBar::update(std::size_t done) {
    last_done_ = done;
    const auto now = Clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100) && !(known_ && done == total_)) return;
    last_draw_ = now;
    draw(done, false);
}

void ProgressBar::draw(std::size_t done, bool final) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    char line[160];
    if (known_ && total_ > 0) {
        constexpr int kWidth = 30;
        const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
        const int filled = static_cast<int>(frac * kWidth);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(kWidth, '.');
        const double left = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0.0;
        std::snprintf(line, sizeof line, "\r[%s] %zu/%zu %3.0f%%  %.0f/s  %.0f s left ", bar.c_str(), done,
                      total_, frac * 100, rate, std::ceil(left));
    } else {
        std::snprintf(line, sizeof line, "\r%zu done  %.0f/s ", done, rate);
    }
    std::fputs(line, stderr);
    if (final) std::fputs("\n", stderr);
    std::fflush(stderr);
}
}  // namespace mproc::detail::pool
