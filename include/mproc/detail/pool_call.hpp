// mproc/detail/pool_call.hpp: the compile-time side of a pool call (not API): the result type
// of f over the arguments, the checks that name what cannot be sent, and the chunk sizes.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>
// The range concepts and accessors (input_range, sized_range, range_value_t, ranges::begin,
// end, size): libstdc++ defines them in a header that <span> includes, and the rest of
// <ranges> (the views: 4,000 lines) is a tenth of a second in every pool call's translation
// unit (issue 18); elsewhere, the standard's header.
#if defined(__GLIBCXX__)
#include <span>
#else
#include <ranges>
#endif

#include "mproc/detail/pool_wire.hpp"
#include "mproc/process.hpp"
#include "mproc/serialize.hpp"

namespace mproc::detail::pool {

template <class T>
struct tuple_of {
    using type = std::tuple<T>;
};
template <class... T>
struct tuple_of<std::tuple<T...>> {
    using type = std::tuple<stored_arg_t<T>...>;
};
template <class A, class B>
struct tuple_of<std::pair<A, B>> {
    using type = std::tuple<stored_arg_t<A>, stored_arg_t<B>>;
};

template <class F, class Tuple>
struct apply_result;
template <class F, class... A>
struct apply_result<F, std::tuple<A...>> {
    using type = std::invoke_result_t<F&, A...>;
};

template <class F, class Rng>
using map_result_t = std::invoke_result_t<std::decay_t<F>&, stored_arg_t<std::ranges::range_value_t<Rng>>>;
template <class F, class Rng>
using starmap_result_t = typename apply_result<
    std::decay_t<F>, typename tuple_of<std::remove_cvref_t<std::ranges::range_value_t<Rng>>>::type>::type;

// A stream's input, kept until the stream ends: the caller's range by reference when it is an
// lvalue (it must outlive the iteration, as any view), else moved in and owned. (Not
// std::views::all: clang 14 rejects libstdc++ 12's views in ranges concepts.)
template <class Rng>
class HeldRange {
    static constexpr bool by_reference = std::is_lvalue_reference_v<Rng>;
    using Stored = std::conditional_t<by_reference, std::remove_reference_t<Rng>*, std::remove_cvref_t<Rng>>;

public:
    using range_type = std::remove_reference_t<Rng>;
    using iterator = decltype(std::ranges::begin(std::declval<range_type&>()));
    explicit HeldRange(Rng&& r) : r_(hold(std::forward<Rng>(r))) {}
    range_type& get() {
        if constexpr (by_reference)
            return *r_;
        else
            return r_;
    }

private:
    static Stored hold(Rng&& r) {
        if constexpr (by_reference)
            return &r;
        else
            return Stored(std::move(r));
    }
    Stored r_;
};

// How many chunks a stream (imap, Executor.map) keeps submitted ahead of what was taken:
// about 1024 items, and at least four chunks per worker, so that small tasks travel in
// batches and every worker has work while the caller looks at a result.
inline std::size_t stream_window(std::size_t processes, std::size_t chunksize) {
    const std::size_t by_items = 1024 / (chunksize == 0 ? 1 : chunksize);
    return processes * 4 > by_items ? processes * 4 : by_items;
}

// A chunksize given by the caller: 0 is std::invalid_argument (Python: "Chunksize must be 1+").
inline std::size_t checked_chunksize(std::size_t chunksize) {
    if (chunksize == 0) throw std::invalid_argument("mproc: chunksize must be 1 or more, not 0");
    return chunksize;
}

// Python's default chunksize for map: len / (4 * processes), rounded up.
inline std::size_t default_chunksize(std::size_t n, std::size_t processes) {
    if (n == 0) return 1;
    const std::size_t per = processes * 4;
    return n / per + (n % per ? 1 : 0);
}

template <class Core, class F>
constexpr void check_callable() {
    if constexpr (Core::crosses_processes)
        static_assert(is_portable_callable_v<F>,
                      "mproc: a pool task goes to a worker process that already runs, so it must be "
                      "a function, a captureless lambda or a default-constructible callable with "
                      "serialize(); pass captured values as arguments (or use "
                      "mproc::pool::ThreadPool, which runs any callable)");
}

// A process pool's arguments go to another process: one that cannot is refused here, naming
// the argument's own type, before the archive that would write the whole tuple says so.
template <class Tuple>
struct argument_check;
template <class... A>
struct argument_check<std::tuple<A...>> {
    static constexpr bool run() { return (check_serializable<A>() && ...); }
};
template <class Core, class Tuple>
constexpr void check_arguments() {
    if constexpr (Core::crosses_processes) (void)argument_check<Tuple>::run();
}

// An input iterator over anything with `std::optional<V> next()`, empty at the end: what
// imap, Executor.map and as_completed return ranges of.
template <class Owner, class V>
class NextIterator {
public:
    using value_type = V;
    using difference_type = std::ptrdiff_t;
    NextIterator() = default;
    explicit NextIterator(Owner* owner) : owner_(owner) { current_ = owner_->next(); }
    V& operator*() const { return *current_; }
    NextIterator& operator++() {
        current_.reset();
        current_ = owner_->next();
        return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return !current_; }

private:
    Owner* owner_ = nullptr;
    mutable std::optional<V> current_;
};
}  // namespace mproc::detail::pool
