// Formatting helpers for the examples: print values the way Python's print() shows them, so
// each example's output can be read beside the tutorial's.
#pragma once

#include <unistd.h>

#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace py {

// The directory of this program, where the other examples' programs are too.
inline std::string here() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    std::string p(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    return p.substr(0, p.rfind('/'));
}

inline std::string repr(double x) {
    std::ostringstream s;
    s << x;
    std::string t = s.str();
    if (t.find_first_of(".en") == std::string::npos) t += ".0";  // Python prints 30.0
    return t;
}
inline std::string repr(int x) { return std::to_string(x); }
inline std::string repr(long x) { return std::to_string(x); }
inline std::string repr(const std::string& x) { return "'" + x + "'"; }
inline std::string repr(bool x) { return x ? "True" : "False"; }

template <class T>
std::string repr(const std::vector<T>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + repr(v[i]);
    return s + "]";
}

}  // namespace py
