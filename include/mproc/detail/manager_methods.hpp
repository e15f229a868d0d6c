// mproc/detail/manager_methods.hpp: what a method call on a managed object is, shared by the
// proxy that makes it and the servant that runs it (not API): the method set of each served type,
// and how arguments and results are packed.
//
// A method set is a scoped enum made with MPROC_DETAIL_METHOD_SET(Set, a, b, ...). The proxy
// calls Set::a, the servant switches over Set, and the name that travels to the server is the
// enumerator's own spelling, "a", read from the macro's arguments at compile time: each method is
// named once, a misspelt one does not compile on either side, and a servant whose switch misses
// a method of its set gets -Wswitch. A trailing underscore is not sent (union_ travels as
// "union", which C++ reserves). The wire carries the name, not the enumerator's number, so the
// server still refuses an unknown name with an error reply, whatever a client sends.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "mproc/serialize.hpp"

namespace mproc::managers::detail {
using mproc::detail::InputArchive;
using mproc::detail::OutputArchive;

// A method the server does not serve: std::invalid_argument (the client gets it back as the
// same type), naming the type (`what`) and the method.
[[noreturn]] void no_method(std::string_view what, std::string_view method);

// The names in a stringized argument list ("a, b, union_"): split at commas, spaces and one
// trailing underscore dropped.
constexpr std::size_t count_methods(std::string_view list) noexcept {
    std::size_t n = 1;
    for (char c : list) n += c == ',';
    return n;
}
template <std::size_t N>
constexpr std::array<std::string_view, N> split_methods(std::string_view list) noexcept {
    std::array<std::string_view, N> names{};
    for (std::size_t i = 0; i < N; ++i) {
        const std::size_t comma = list.find(',');
        std::string_view name = list.substr(0, comma);
        while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        if (!name.empty() && name.back() == '_') name.remove_suffix(1);
        names[i] = name;
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    return names;
}

template <class Set>
concept method_set = std::is_enum_v<Set> && requires(Set s) {
    { method_list(s) } -> std::same_as<std::string_view>;
};

template <method_set Set>
inline constexpr auto method_names =
    split_methods<count_methods(method_list(Set{}))>(method_list(Set{}));

// The name a method travels as.
template <method_set Set>
constexpr std::string_view method_name(Set m) noexcept {
    return method_names<Set>[static_cast<std::size_t>(m)];
}

// The method a request names; a name outside the set: no_method(what, name).
template <method_set Set>
Set find_method(std::string_view name, std::string_view what) {
    const auto& names = method_names<Set>;
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == name) return static_cast<Set>(i);
    no_method(what, name);
}

// The enumerators are numbered from 0 in order, so an enumerator is its name's index.
#define MPROC_DETAIL_METHOD_SET(Set, ...)                \
    enum class Set : std::uint8_t { __VA_ARGS__ };       \
    constexpr std::string_view method_list(Set) noexcept { return #__VA_ARGS__; }

// Each in the order its servant tests them (the most called first).
MPROC_DETAIL_METHOD_SET(ListMethod, append, extend, get, item, set, insert, pop, remove, index, count, contains, size,
                        clear, to_vector, slice, set_slice, del_slice, reverse, sort, imul);
MPROC_DETAIL_METHOD_SET(DictMethod, set, get, get_or, contains, pop, pop_or, popitem, setdefault, update, size, items,
                        keys, values, next_key, clear);
MPROC_DETAIL_METHOD_SET(SetMethod, add, discard, remove, pop, contains, update, size, clear, items, union_, intersection,
                        difference, symmetric_difference, intersection_update, difference_update,
                        symmetric_difference_update, issubset, issuperset, isdisjoint);
MPROC_DETAIL_METHOD_SET(ValueMethod, get, set);
MPROC_DETAIL_METHOD_SET(ArrayMethod, get, set, size, to_vector, assign);
MPROC_DETAIL_METHOD_SET(NamespaceMethod, set, get, has, del, names);
MPROC_DETAIL_METHOD_SET(QueueMethod, put, get, qsize, task_done, join, maxsize);
// Lock and RLock; a Condition's own lock answers the same three.
MPROC_DETAIL_METHOD_SET(LockMethod, acquire, release, locked);
MPROC_DETAIL_METHOD_SET(ConditionMethod, acquire, release, locked, wait, notify, notify_all);
MPROC_DETAIL_METHOD_SET(SemaphoreMethod, acquire, release, get_value);
MPROC_DETAIL_METHOD_SET(EventMethod, is_set, set, clear, wait);
MPROC_DETAIL_METHOD_SET(BarrierMethod, wait, reset, abort, parties, n_waiting, broken);

#undef MPROC_DETAIL_METHOD_SET

// The type keys of the synchronization types, whose servants are no templates (the server's
// sync_servants.cpp registers them) and whose proxies name them: spelt once, here, like the
// methods. The other types' keys come from their servant templates (key()).
struct SyncTypeKey {
    static constexpr const char* lock = "Lock";
    static constexpr const char* rlock = "RLock";
    static constexpr const char* semaphore = "Semaphore";
    static constexpr const char* bounded_semaphore = "BoundedSemaphore";
    static constexpr const char* condition = "Condition";
    static constexpr const char* event = "Event";
    static constexpr const char* barrier = "Barrier";
};

// --- arguments and results: one archive of the values in order ---

template <class... A>
std::string pack(const A&... args) {
    std::string out;
    OutputArchive ar(out);
    if constexpr (sizeof...(A) > 0) ar(args...);
    return out;
}

template <class R>
R unpack(const std::string& bytes) {
    if constexpr (std::is_void_v<R>) {
        return;
    } else {
        R r{};
        InputArchive ar(bytes, {});
        ar(r);
        return r;
    }
}

// The next argument of a request, in a servant.
template <class T>
T take(InputArchive& in) {
    T x{};
    in(x);
    return x;
}

}  // namespace mproc::managers::detail
