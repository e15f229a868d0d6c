// Ranges of numbers for the tests. std::views::iota would do, but clang 14 rejects libstdc++
// 12's iota_view in ranges concepts, and the suite is built with clang too.
#pragma once

#include <cstddef>
#include <iterator>
#include <numeric>
#include <vector>

namespace mproc_test {

// first, first + 1, ..., last - 1.
template <class T>
std::vector<T> numbers(T first, T last) {
    std::vector<T> v(last > first ? static_cast<std::size_t>(last - first) : 0);
    std::iota(v.begin(), v.end(), first);
    return v;
}

// first, first + 1, ... without end: an input that must be read lazily. reads, if given,
// counts the items read.
template <class T>
class Endless {
public:
    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        explicit iterator(T v, std::size_t* reads = nullptr) : v_(v), reads_(reads) {}
        T operator*() const {
            if (reads_ != nullptr) ++*reads_;
            return v_;
        }
        iterator& operator++() {
            ++v_;
            return *this;
        }
        iterator operator++(int) {
            iterator old = *this;
            ++v_;
            return old;
        }
        bool operator==(const iterator& o) const noexcept { return v_ == o.v_; }
        bool operator==(std::unreachable_sentinel_t) const noexcept { return false; }

    private:
        T v_{};
        std::size_t* reads_ = nullptr;
    };
    explicit Endless(T first, std::size_t* reads = nullptr) : first_(first), reads_(reads) {}
    iterator begin() const { return iterator(first_, reads_); }
    std::unreachable_sentinel_t end() const noexcept { return {}; }

private:
    T first_;
    std::size_t* reads_ = nullptr;
};

}  // namespace mproc_test
