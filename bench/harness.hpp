// A small benchmark harness: medians of repeated runs, the same workload measured in Python on
// this machine (a script in bench/python printing "name seconds" lines), and a table of ratios.
// Not Google Benchmark: what matters here is the side-by-side comparison with another runtime
// in one run, which a plain median serves.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace bench {

// The median of some measurements (0 for none: a rival that is not installed).
inline double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// The median wall time of one call of fn, in seconds, over `runs` calls after `warmup` calls.
inline double median_seconds(int runs, const std::function<void()>& fn, int warmup = 2) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> t;
    t.reserve(runs);
    for (int i = 0; i < runs; ++i) {
        const auto a = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// Medians of several workloads measured round-robin: each repetition runs every workload
// once, so drift in the machine's speed (other load, frequency changes) falls on all of them
// alike and their ratios stay honest.
inline std::vector<double> interleaved_medians(int runs, const std::vector<std::function<void()>>& fns,
                                               int warmup = 3) {
    for (int i = 0; i < warmup; ++i)
        for (auto& f : fns) f();
    std::vector<std::vector<double>> t(fns.size());
    for (int i = 0; i < runs; ++i)
        for (std::size_t k = 0; k < fns.size(); ++k) {
            const auto a = std::chrono::steady_clock::now();
            fns[k]();
            t[k].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
        }
    std::vector<double> med;
    for (auto& v : t) {
        std::sort(v.begin(), v.end());
        med.push_back(v[v.size() / 2]);
    }
    return med;
}

// Runs a shell command and reads its "name value" lines (lines starting with '#' are notes).
inline std::map<std::string, double> run_figures(const std::string& cmd) {
    std::map<std::string, double> out;
    FILE* f = popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!f) return out;
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
        std::istringstream in(line);
        std::string name;
        double v;
        if (line[0] != '#' && in >> name >> v) out[name] = v;
    }
    pclose(f);
    return out;
}

// Runs `python3 <script> <args>` and reads its "name seconds" lines.
inline std::map<std::string, double> run_python(const std::string& script, const std::string& args) {
    return run_figures("python3 '" + script + "' " + args);
}

// bench/python, copied next to the benchmark binary by the build.
inline std::string python_dir() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    const std::string exe(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    return exe.substr(0, exe.rfind('/')) + "/python";
}

inline std::string human_time(double s) {
    std::ostringstream o;
    o << std::fixed;
    if (s < 1e-6)
        o << std::setprecision(1) << s * 1e9 << " ns";
    else if (s < 1e-3)
        o << std::setprecision(1) << s * 1e6 << " us";
    else if (s < 1)
        o << std::setprecision(2) << s * 1e3 << " ms";
    else
        o << std::setprecision(2) << s << " s";
    return o.str();
}

inline std::string ratio(double a, double b) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << a / b << "x";
    return o.str();
}

struct Row {
    std::string name;
    double seconds;
    std::string vs_os;      // e.g. "1.08x bare fork"
    std::string vs_python;  // e.g. "15.1x faster than Python fork"
};

inline void print_table(const std::string& title, const std::vector<Row>& rows) {
    std::cout << title << "\n";
    std::cout << "  " << std::left << std::setw(34) << "workload" << std::setw(12) << "median"
              << std::setw(26) << "vs the OS limit" << "  vs Python\n";
    for (const auto& r : rows)
        std::cout << "  " << std::left << std::setw(34) << r.name << std::setw(12) << human_time(r.seconds)
                  << std::setw(26) << r.vs_os << "  " << r.vs_python << "\n";
    std::cout << std::flush;
}

}  // namespace bench
