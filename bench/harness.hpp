// A small benchmark harness: medians of repeated runs, the same workload measured in Python on
// this machine (a script in bench/python printing "name seconds" lines), and a table of ratios.
// Not Google Benchmark: what matters here is the side-by-side comparison with another runtime
// in one run, which a plain median serves. Each section also records its figures (record()),
// which `mproc-bench --data FILE` writes out as JSON for scripts/charts.py to draw.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
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

// Figures read from another program: name to value, and to the number of runs the value is the
// median of, where the program says (a third field on its line).
struct Figures : std::map<std::string, double> {
    std::map<std::string, long> runs;
};

// Runs a shell command and reads its "name value [runs]" lines (lines starting with '#' are notes).
inline Figures run_figures(const std::string& cmd) {
    Figures out;
    FILE* f = popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!f) return out;
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
        std::istringstream in(line);
        std::string name;
        double v;
        long runs;
        if (line[0] == '#' || !(in >> name >> v)) continue;
        out[name] = v;
        if (in >> runs) out.runs[name] = runs;
    }
    pclose(f);
    return out;
}

// Runs `python3 <script> <args>` and reads its "name seconds" lines.
inline Figures run_python(const std::string& script, const std::string& args) {
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

// --- Figures as data ------------------------------------------------------------------------
// Every figure a section prints is also recorded: its section (set by main), its workload (the
// figures of one workload are compared with each other, in one unit), its rival, and the runs
// its median came from. Units: "s" for a time (lower is better); anything else ("tasks/s",
// "GB/s", "x" for a speed-up) is a rate (higher is better).

enum class Rival { mproc, python, bare, library };  // bare: the OS operation (or bare MPI), the limit

inline const char* rival_name(Rival r) {
    switch (r) {
        case Rival::mproc: return "mproc";
        case Rival::python: return "python";
        case Rival::bare: return "bare";
        case Rival::library: return "library";
    }
    return "?";
}

struct Entry {
    Rival rival;
    std::string name;               // as the table prints it: "mproc fork", "bare futex ping-pong"
    double median;                  // 0: not measured in this run (a rival not installed); not recorded
    long runs;                      // how many runs the median is taken over
    std::vector<double> samples{};  // those runs' own figures, in the unit, where they were kept
};

struct Figure {
    std::string section, workload, unit;
    Entry entry;
};

struct Results {
    std::string section;
    std::vector<Figure> figures;
};

inline Results& results() {
    static Results r;
    return r;
}

// The figures of one workload, in one unit.
inline void record(const std::string& workload, const std::string& unit, const std::vector<Entry>& entries) {
    for (const auto& e : entries)
        if (e.median > 0 && std::isfinite(e.median)) results().figures.push_back({results().section, workload, unit, e});
}

// Python's (or another program's) figure `key` as an entry, converted into the workload's unit
// by `to`; a median of 0 (not recorded) where the program gave none.
inline Entry from(const Figures& figs, const std::string& key, Rival rival, const std::string& name,
                  double (*to)(double) = nullptr) {
    const auto it = figs.find(key);
    if (it == figs.end()) return {rival, name, 0.0, 0};
    const auto runs = figs.runs.find(key);
    return {rival, name, to ? to(it->second) : it->second, runs == figs.runs.end() ? 1 : runs->second};
}

// Gigabytes (1e9 bytes) per second, from seconds per MiB.
inline double gb_per_s(double seconds_per_mib) { return static_cast<double>(1 << 20) / 1e9 / seconds_per_mib; }

// Every element of v through f: runs in seconds into the workload's unit.
template <class F>
std::vector<double> each(const std::vector<double>& v, F f) {
    std::vector<double> out;
    out.reserve(v.size());
    for (double x : v) out.push_back(f(x));
    return out;
}

inline std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

inline std::string json_number(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", x);
    return b;
}

// Writes every recorded figure, and what the run was, as JSON (the format scripts/charts.py reads
// and checks). Returns false if the file cannot be written.
inline bool write_data(const std::string& path, bool quick, const std::string& commit) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    double load = -1;  // the machine's 1-minute load average at the end: how quiet the run was
    getloadavg(&load, 1);
#ifdef __clang__
    const std::string compiler = "clang " __clang_version__;
#else
    const std::string compiler = "g++ " __VERSION__;
#endif
    std::ostringstream o;
    o << "{\n  \"format\": \"mproc-bench data 1\",\n  \"date\": " << json_string(date)
      << ",\n  \"commit\": " << json_string(commit) << ",\n  \"quick\": " << (quick ? "true" : "false")
      << ",\n  \"host\": " << json_string(host) << ",\n  \"cpus\": " << sysconf(_SC_NPROCESSORS_ONLN)
      << ",\n  \"load\": " << json_number(load) << ",\n  \"compiler\": " << json_string(compiler)
      << ",\n  \"figures\": [";
    const char* sep = "\n";
    for (const auto& fig : results().figures) {
        const Entry& e = fig.entry;
        o << sep << "    {\"section\": " << json_string(fig.section) << ", \"workload\": " << json_string(fig.workload)
          << ", \"rival\": " << json_string(rival_name(e.rival)) << ", \"name\": " << json_string(e.name)
          << ", \"unit\": " << json_string(fig.unit) << ", \"median\": " << json_number(e.median)
          << ", \"runs\": " << e.runs << ", \"samples\": [";
        for (std::size_t i = 0; i < e.samples.size(); ++i) o << (i ? ", " : "") << json_number(e.samples[i]);
        o << "]}";
        sep = ",\n";
    }
    o << "\n  ]\n}\n";
    const std::string text = o.str();
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    return std::fclose(f) == 0 && ok;
}

}  // namespace bench
