// The parts of the container servants (mproc/detail/manager_container_servants.hpp) that are not
// templates: Python's index and slice arithmetic, and the Namespace's methods.
#include <algorithm>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "mproc/detail/manager_container_servants.hpp"

namespace mproc::managers::detail {

std::size_t python_index(std::int64_t i, std::size_t size, const char* what) {
    const auto n = static_cast<std::int64_t>(size);
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw std::out_of_range(std::string("mproc: ") + what);
    return static_cast<std::size_t>(i);
}

SliceRange python_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, std::int64_t step,
                        std::size_t size) {
    if (step == 0) throw std::invalid_argument("mproc: slice step cannot be zero");
    // As Python's, so that -step cannot overflow.
    step = std::max(step, -std::numeric_limits<std::int64_t>::max());
    const auto n = static_cast<std::int64_t>(size);
    auto fit = [&](std::optional<std::int64_t> bound, std::int64_t none) {
        if (!bound) return none;
        std::int64_t i = *bound;
        if (i < 0) {
            i += n;
            if (i < 0) i = step < 0 ? -1 : 0;
        } else if (i >= n) {
            i = step < 0 ? n - 1 : n;
        }
        return i;
    };
    SliceRange s;
    s.step = step;
    s.start = fit(start, step < 0 ? n - 1 : 0);
    s.stop = fit(stop, step < 0 ? -1 : n);
    if (step < 0 && s.stop < s.start)
        s.length = static_cast<std::size_t>((s.start - s.stop - 1) / -step + 1);
    else if (step > 0 && s.start < s.stop)
        s.length = static_cast<std::size_t>((s.stop - s.start - 1) / step + 1);
    return s;
}

std::size_t python_bound(std::int64_t i, std::size_t size) noexcept {
    const auto n = static_cast<std::int64_t>(size);
    if (i < 0) i = std::max<std::int64_t>(0, i + n);
    return static_cast<std::size_t>(std::min(i, n));
}

void NamespaceServant::call(std::string_view m, InputArchive& in, OutputArchive& out) {
    auto missing = [](const std::string& name) {
        return std::out_of_range("mproc: the Namespace has no attribute '" + name + "'");
    };
    using M = NamespaceMethod;
    switch (find_method<M>(m, "Namespace")) {
        case M::set: {
            auto name = take<std::string>(in);
            attrs_.insert_or_assign(std::move(name), take<std::string>(in));
            return;
        }
        case M::get: {
            const auto name = take<std::string>(in);
            auto it = attrs_.find(name);
            if (it == attrs_.end()) throw missing(name);
            out(it->second);
            return;
        }
        case M::has:
            out(attrs_.count(take<std::string>(in)) != 0);
            return;
        case M::del: {
            const auto name = take<std::string>(in);
            if (attrs_.erase(name) == 0) throw missing(name);
            return;
        }
        case M::names: {
            std::vector<std::string> names;
            for (auto& [k, v] : attrs_) names.push_back(k);
            out(names);
            return;
        }
    }
}

}  // namespace mproc::managers::detail
