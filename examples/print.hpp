// Formatting helpers for the examples: print values the way Python's print() shows them, so
// each example's output can be read beside the tutorial's.
#pragma once

#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace py {

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
