// mproc/detail/manager_container_servants.hpp: the servants of SyncManager's container types and of its
// queues (not API): the objects a manager's server holds for ListProxy, DictProxy, SetProxy,
// ValueProxy, ArrayProxy, NamespaceProxy and QueueProxy, each answering its method set
// (manager_methods.hpp) with Python's semantics. The servants of the synchronization types,
// which no client instantiates, are in src/managers/sync_servants.cpp.
#pragma once

#include <algorithm>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mproc/detail/manager_servant.hpp"
#include "mproc/errors.hpp"
#include "mproc/serialize.hpp"

namespace mproc::managers::detail {

// Python's indexing: negative counts from the end; out of range: std::out_of_range (IndexError).
std::size_t python_index(std::int64_t i, std::size_t size, const char* what);

// Python's slice(start, stop, step) fitted to a sequence of `size` items (PySlice_AdjustIndices):
// an empty bound is None, negative bounds count from the end, bounds past either end are
// clamped. Item k of the slice (k < length) is at start + k * step. A step of 0:
// std::invalid_argument (Python: ValueError).
struct SliceRange {
    std::int64_t start = 0, stop = 0, step = 1;
    std::size_t length = 0;
    std::size_t at(std::size_t k) const { return static_cast<std::size_t>(start + static_cast<std::int64_t>(k) * step); }
};
SliceRange python_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, std::int64_t step,
                        std::size_t size);

// Python's list.index(x, start, stop) bounds: negative counts from the end, then clamped to
// [0, size].
std::size_t python_bound(std::int64_t i, std::size_t size) noexcept;

template <class T>
concept less_comparable = requires(const T& a, const T& b) {
    { a < b } -> std::convertible_to<bool>;
};

template <class T>
class ListServant final : public Servant {
public:
    static std::string key() { return "list<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(items_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        using M = ListMethod;
        switch (find_method<M>(m, "list")) {
            case M::append:
                items_.push_back(take<T>(in));
                return;
            case M::extend: {
                auto xs = take<std::vector<T>>(in);
                items_.insert(items_.end(), std::make_move_iterator(xs.begin()), std::make_move_iterator(xs.end()));
                return;
            }
            case M::get:
                out(items_[index(in, "list index out of range")]);
                return;
            case M::item: {  // for iteration (Python's __getitem__ until IndexError): empty past the end
                const auto i = take<std::uint64_t>(in);
                out(i < items_.size() ? std::optional<T>(items_[i]) : std::optional<T>());
                return;
            }
            case M::set: {
                const std::size_t i = index(in, "list assignment index out of range");
                items_[i] = take<T>(in);
                return;
            }
            case M::insert: {
                auto i = take<std::int64_t>(in);
                T x = take<T>(in);
                const auto n = static_cast<std::int64_t>(items_.size());
                if (i < 0) i = std::max<std::int64_t>(0, i + n);
                items_.insert(items_.begin() + std::min(i, n), std::move(x));
                return;
            }
            case M::pop: {
                if (items_.empty()) throw std::out_of_range("mproc: pop from empty list");
                const std::size_t i = index(in, "pop index out of range");
                out(items_[i]);
                items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
                return;
            }
            case M::remove: {
                auto it = std::find(items_.begin(), items_.end(), take<T>(in));
                if (it == items_.end()) throw std::invalid_argument("mproc: list.remove(x): x not in list");
                items_.erase(it);
                return;
            }
            case M::index: {
                T x = take<T>(in);
                const auto first = items_.begin() + static_cast<std::ptrdiff_t>(python_bound(take<std::int64_t>(in), items_.size()));
                const auto last = items_.begin() + static_cast<std::ptrdiff_t>(python_bound(take<std::int64_t>(in), items_.size()));
                const auto it = first < last ? std::find(first, last, x) : last;
                if (it == last) throw std::invalid_argument("mproc: list.index(x): x not in list");
                out(static_cast<std::uint64_t>(it - items_.begin()));
                return;
            }
            case M::count:
                out(static_cast<std::uint64_t>(std::count(items_.begin(), items_.end(), take<T>(in))));
                return;
            case M::contains:
                out(std::find(items_.begin(), items_.end(), take<T>(in)) != items_.end());
                return;
            case M::size:
                out(static_cast<std::uint64_t>(items_.size()));
                return;
            case M::clear:
                std::vector<T>().swap(items_);
                return;
            case M::to_vector:
                out(items_);
                return;
            case M::slice: {
                const SliceRange s = slice(in);
                std::vector<T> part;
                part.reserve(s.length);
                for (std::size_t k = 0; k < s.length; ++k) part.push_back(items_[s.at(k)]);
                out(part);
                return;
            }
            case M::set_slice: {
                const SliceRange s = slice(in);
                assign_slice(s, take<std::vector<T>>(in));
                return;
            }
            case M::del_slice:
                delete_slice(slice(in));
                return;
            case M::reverse:
                std::reverse(items_.begin(), items_.end());
                return;
            case M::sort:
                if constexpr (less_comparable<T>) {
                    // Stable both ways, as Python's: equal items keep their order under reverse too.
                    if (take<bool>(in))
                        std::stable_sort(items_.begin(), items_.end(), [](const T& a, const T& b) { return b < a; });
                    else
                        std::stable_sort(items_.begin(), items_.end(), [](const T& a, const T& b) { return a < b; });
                    return;
                }
                no_method("list", m);  // a list of a T without operator< has no sort
            case M::imul:  // Python: a *= n; n below 1 empties the list
                repeat(take<std::int64_t>(in));
                return;
        }
    }

private:
    std::size_t index(InputArchive& in, const char* what) { return python_index(take<std::int64_t>(in), items_.size(), what); }
    SliceRange slice(InputArchive& in) {
        auto start = take<std::optional<std::int64_t>>(in);
        auto stop = take<std::optional<std::int64_t>>(in);
        return python_slice(start, stop, take<std::int64_t>(in), items_.size());
    }
    // Python: a[start:stop] = values replaces the items in the range with any number of
    // values; an extended slice (a step other than 1) takes exactly as many as it has items.
    void assign_slice(const SliceRange& s, std::vector<T> values) {
        if (s.step == 1) {
            const auto first = items_.begin() + s.start;
            items_.erase(first, first + static_cast<std::ptrdiff_t>(s.length));
            items_.insert(items_.begin() + s.start, std::make_move_iterator(values.begin()),
                          std::make_move_iterator(values.end()));
            return;
        }
        if (values.size() != s.length)
            throw std::invalid_argument("mproc: attempt to assign sequence of size " + std::to_string(values.size()) +
                                        " to extended slice of size " + std::to_string(s.length));
        for (std::size_t k = 0; k < s.length; ++k) items_[s.at(k)] = std::move(values[k]);
    }
    void delete_slice(const SliceRange& s) {
        if (s.step == 1) {
            const auto first = items_.begin() + s.start;
            items_.erase(first, first + static_cast<std::ptrdiff_t>(s.length));
            return;
        }
        std::vector<bool> gone(items_.size(), false);
        for (std::size_t k = 0; k < s.length; ++k) gone[s.at(k)] = true;
        std::vector<T> kept;
        kept.reserve(items_.size() - s.length);
        for (std::size_t i = 0; i < items_.size(); ++i)
            if (!gone[i]) kept.push_back(std::move(items_[i]));
        items_.swap(kept);
    }
    void repeat(std::int64_t n) {
        if (n <= 0 || items_.empty()) {
            std::vector<T>().swap(items_);
            return;
        }
        const std::size_t size = items_.size();
        if (static_cast<std::uint64_t>(n) > items_.max_size() / size)
            throw std::length_error("mproc: a list of " + std::to_string(size) + " items repeated " + std::to_string(n) +
                                    " times is too large");
        items_.reserve(size * static_cast<std::size_t>(n));
        for (std::int64_t r = 1; r < n; ++r)
            for (std::size_t i = 0; i < size; ++i) items_.push_back(items_[i]);
    }
    std::vector<T> items_;
};

// A dict keeps Python's insertion order (keys(), values(), iteration, popitem() taking the last
// one in): each key has a sequence number, and order_ lists the entries by it.
template <class K, class V>
class DictServant final : public Servant {
public:
    static std::string key() {
        return "dict<" + mproc::detail::type_name(typeid(K)) + "," + mproc::detail::type_name(typeid(V)) + ">";
    }
    void init(InputArchive& in) {
        for (auto& [k, v] : take<std::map<K, V>>(in)) put(k, std::move(v));
    }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        using M = DictMethod;
        switch (find_method<M>(m, "dict")) {
            case M::set: {
                K k = take<K>(in);
                put(std::move(k), take<V>(in));
                return;
            }
            case M::get:
                out(at(take<K>(in))->second.value);
                return;
            case M::get_or: {
                K k = take<K>(in);
                V fallback = take<V>(in);
                auto it = map_.find(k);
                out(it == map_.end() ? fallback : it->second.value);
                return;
            }
            case M::contains:
                out(map_.count(take<K>(in)) != 0);
                return;
            case M::pop: {
                auto it = at(take<K>(in));
                out(it->second.value);
                erase(it);
                return;
            }
            case M::pop_or: {
                K k = take<K>(in);
                V fallback = take<V>(in);
                auto it = map_.find(k);
                if (it == map_.end()) {
                    out(fallback);
                } else {
                    out(it->second.value);
                    erase(it);
                }
                return;
            }
            case M::popitem: {
                if (order_.empty()) throw std::out_of_range("mproc: popitem(): dictionary is empty");
                auto it = std::prev(order_.end())->second;
                out(std::pair<K, V>(it->first, it->second.value));
                erase(it);
                return;
            }
            case M::setdefault: {
                K k = take<K>(in);
                V v = take<V>(in);
                auto it = map_.find(k);
                out((it == map_.end() ? put(std::move(k), std::move(v)) : it)->second.value);
                return;
            }
            case M::update:
                for (auto& [k, v] : take<std::map<K, V>>(in)) put(k, std::move(v));
                return;
            case M::size:
                out(static_cast<std::uint64_t>(map_.size()));
                return;
            case M::items: {
                std::map<K, V> all;
                for (auto& [k, e] : map_) all.emplace_hint(all.end(), k, e.value);
                out(all);
                return;
            }
            case M::keys: {
                std::vector<K> keys;
                keys.reserve(order_.size());
                for (auto& [seq, it] : order_) keys.push_back(it->first);
                out(keys);
                return;
            }
            case M::values: {
                std::vector<V> values;
                values.reserve(order_.size());
                for (auto& [seq, it] : order_) values.push_back(it->second.value);
                out(values);
                return;
            }
            case M::next_key: {  // for iteration: the key after sequence number `after`
                const auto expected = take<std::uint64_t>(in);
                const auto after = take<std::uint64_t>(in);
                if (expected != map_.size()) throw std::logic_error("mproc: dictionary changed size during iteration");
                auto next = order_.upper_bound(after);
                if (next == order_.end())
                    out(std::optional<std::pair<std::uint64_t, K>>());
                else
                    out(std::optional<std::pair<std::uint64_t, K>>(std::pair<std::uint64_t, K>(next->first, next->second->first)));
                return;
            }
            case M::clear: {
                order_.clear();
                map_.clear();
                return;
            }
        }
    }

private:
    struct Entry {
        V value;
        std::uint64_t seq;
    };
    using Iter = typename std::map<K, Entry>::iterator;
    Iter at(const K& k) {
        auto it = map_.find(k);
        if (it == map_.end()) throw std::out_of_range("mproc: key not in the managed dict");
        return it;
    }
    // A new key goes last; a key already there keeps its place, as in Python.
    Iter put(K k, V v) {
        auto it = map_.find(k);
        if (it != map_.end()) {
            it->second.value = std::move(v);
            return it;
        }
        it = map_.emplace(std::move(k), Entry{std::move(v), next_seq_}).first;
        order_.emplace_hint(order_.end(), next_seq_++, it);
        return it;
    }
    void erase(Iter it) {
        order_.erase(it->second.seq);
        map_.erase(it);
    }
    std::map<K, Entry> map_;
    std::map<std::uint64_t, Iter> order_;
    std::uint64_t next_seq_ = 1;  // 0 is "before the first" for next_key
};

template <class T>
class SetServant final : public Servant {
public:
    static std::string key() { return "set<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(items_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        using M = SetMethod;
        switch (find_method<M>(m, "set")) {
            case M::add:
                items_.insert(take<T>(in));
                return;
            case M::discard:
                items_.erase(take<T>(in));
                return;
            case M::remove:
                if (items_.erase(take<T>(in)) == 0) throw std::out_of_range("mproc: set.remove(x): x not in set");
                return;
            case M::pop: {
                if (items_.empty()) throw std::out_of_range("mproc: pop from an empty set");
                out(*items_.begin());
                items_.erase(items_.begin());
                return;
            }
            case M::contains:
                out(items_.count(take<T>(in)) != 0);
                return;
            case M::update: {
                auto more = take<std::set<T>>(in);
                items_.merge(more);
                return;
            }
            case M::size:
                out(static_cast<std::uint64_t>(items_.size()));
                return;
            case M::clear:
                items_.clear();
                return;
            case M::items:
                out(items_);
                return;
            case M::union_:
                out(combine(take<std::set<T>>(in), Op::union_));
                return;
            case M::intersection:
                out(combine(take<std::set<T>>(in), Op::intersection));
                return;
            case M::difference:
                out(combine(take<std::set<T>>(in), Op::difference));
                return;
            case M::symmetric_difference:
                out(combine(take<std::set<T>>(in), Op::symmetric_difference));
                return;
            case M::intersection_update:
                items_ = combine(take<std::set<T>>(in), Op::intersection);
                return;
            case M::difference_update:
                items_ = combine(take<std::set<T>>(in), Op::difference);
                return;
            case M::symmetric_difference_update:
                items_ = combine(take<std::set<T>>(in), Op::symmetric_difference);
                return;
            case M::issubset: {
                const auto other = take<std::set<T>>(in);
                out(std::includes(other.begin(), other.end(), items_.begin(), items_.end()));
                return;
            }
            case M::issuperset: {
                const auto other = take<std::set<T>>(in);
                out(std::includes(items_.begin(), items_.end(), other.begin(), other.end()));
                return;
            }
            case M::isdisjoint: {
                const auto other = take<std::set<T>>(in);
                out(std::none_of(other.begin(), other.end(), [&](const T& x) { return items_.count(x) != 0; }));
                return;
            }
        }
    }

private:
    enum class Op { union_, intersection, difference, symmetric_difference };
    std::set<T> combine(const std::set<T>& other, Op op) const {
        std::set<T> r;
        auto to = std::inserter(r, r.end());
        const auto a0 = items_.begin(), a1 = items_.end();
        const auto b0 = other.begin(), b1 = other.end();
        switch (op) {
            case Op::union_: std::set_union(a0, a1, b0, b1, to); break;
            case Op::intersection: std::set_intersection(a0, a1, b0, b1, to); break;
            case Op::difference: std::set_difference(a0, a1, b0, b1, to); break;
            case Op::symmetric_difference: std::set_symmetric_difference(a0, a1, b0, b1, to); break;
        }
        return r;
    }
    std::set<T> items_;
};

template <class T>
class ValueServant final : public Servant {
public:
    static std::string key() { return "Value<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(value_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        switch (find_method<ValueMethod>(m, "Value")) {
            case ValueMethod::get:
                out(value_);
                return;
            case ValueMethod::set:
                in(value_);
                return;
        }
    }

private:
    T value_{};
};

// Python: Manager().Array(typecode, sequence): a fixed size, items read and set by index.
template <class T>
class ArrayServant final : public Servant {
public:
    static std::string key() { return "Array<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(items_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        using M = ArrayMethod;
        switch (find_method<M>(m, "Array")) {
            case M::get:
                out(items_[python_index(take<std::int64_t>(in), items_.size(), "array index out of range")]);
                return;
            case M::set: {
                const std::size_t i = python_index(take<std::int64_t>(in), items_.size(), "array assignment index out of range");
                items_[i] = take<T>(in);
                return;
            }
            case M::size:
                out(static_cast<std::uint64_t>(items_.size()));
                return;
            case M::to_vector:
                out(items_);
                return;
            case M::assign: {  // the whole array at once, of the same size
                auto xs = take<std::vector<T>>(in);
                if (xs.size() != items_.size())
                    throw std::invalid_argument("mproc: an Array of " + std::to_string(items_.size()) + " cannot take " +
                                                std::to_string(xs.size()) + " items");
                items_ = std::move(xs);
                return;
            }
        }
    }

private:
    std::vector<T> items_;
};

// A Namespace keeps each attribute as the bytes of a typed value (mproc::dumps): the server
// needs no type of its own for them, and a reader asking for the wrong type gets
// SerializationError naming both.
class NamespaceServant final : public Servant {
public:
    static std::string key() { return "Namespace"; }
    void init(InputArchive& in) { in(attrs_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override;

private:
    std::map<std::string, std::string> attrs_;
};

// A queue served by the manager (Python: Manager().Queue() / JoinableQueue()). Blocking calls
// block the caller's server thread only; one whose client goes away gives up without taking
// anything.
template <class T>
class QueueServant final : public Servant {
public:
    static std::string key() { return "Queue<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(maxsize_); }
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        std::unique_lock lk(mu_);
        using M = QueueMethod;
        switch (find_method<M>(m, "Queue")) {
            case M::put: {
                T x = take<T>(in);
                const bool block = take<bool>(in);
                const auto deadline = Deadline::after(take<Timeout>(in));
                auto room = [&] { return maxsize_ <= 0 || static_cast<long>(items_.size()) < maxsize_; };
                if (!room() && (!block || !wait_for_client(lk, not_full_, deadline, room))) throw Full();
                items_.push_back(std::move(x));
                ++unfinished_;
                not_empty_.notify_one();
                return;
            }
            case M::get: {
                const bool block = take<bool>(in);
                const auto deadline = Deadline::after(take<Timeout>(in));
                auto ready = [&] { return !items_.empty(); };
                if (!ready() && (!block || !wait_for_client(lk, not_empty_, deadline, ready))) throw Empty();
                out(items_.front());
                items_.pop_front();
                not_full_.notify_one();
                return;
            }
            case M::qsize:
                out(static_cast<std::uint64_t>(items_.size()));
                return;
            case M::task_done: {
                if (unfinished_ == 0) throw std::logic_error("mproc: task_done() called too many times");
                if (--unfinished_ == 0) all_done_.notify_all();
                return;
            }
            case M::join:
                wait_for_client(lk, all_done_, Deadline::never(), [&] { return unfinished_ == 0; });
                return;
            case M::maxsize:
                out(static_cast<std::int64_t>(maxsize_));
                return;
        }
    }

private:
    std::mutex mu_;
    std::condition_variable not_empty_, not_full_, all_done_;
    std::deque<T> items_;
    long maxsize_ = 0;
    std::uint64_t unfinished_ = 0;
};

}  // namespace mproc::managers::detail
