// mproc/manager_containers.hpp: the proxies to the containers a SyncManager serves (Python:
// the list, dict, set, Value, Array and Namespace of multiprocessing.managers). Included by
// mproc/managers.hpp, which says what every proxy is and the contracts they all share; include
// that one.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mproc/detail/manager_client.hpp"
#include "mproc/detail/manager_container_servants.hpp"
#include "mproc/serialize.hpp"

namespace mproc::managers {

class BaseManager;
class SyncManager;

// Python: list.sort(*, key=None, reverse=False), without key (see ListProxy::sort).
struct SortOptions {
    bool reverse = false;
};

// Python: Manager().list(): a list of T in the server. Indices count from the end when
// negative, as in Python.
// Blocks: every method is one round trip, which the server runs under the list's own mutex, so
// each is atomic, as a method of the list run in Python's server is; none waits for anything
// else. The operators that return plain vectors make one request (to_vector()) and compute here.
// Throws: those common to proxies (managers.hpp), and those noted per method.
template <class T>
class ListProxy : public detail::TypedProxy<detail::ListMethod> {
    struct ItemSource;

public:
    using servant = detail::ListServant<T>;
    using iterator = detail::FetchIterator<T, ItemSource>;
    ListProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::vector<T>{}); }

    void append(const T& x) { invoke<void>(Method::append, x); }
    void extend(const std::vector<T>& xs) { invoke<void>(Method::extend, xs); }
    // Python: a[i]; out of range: std::out_of_range (IndexError).
    T get(std::int64_t i) const { return invoke<T>(Method::get, i); }
    // Python: a[i] = x; out of range: std::out_of_range.
    void set(std::int64_t i, const T& x) { invoke<void>(Method::set, i, x); }
    // Before index i, clamped to the list (never out of range), as Python's.
    void insert(std::int64_t i, const T& x) { invoke<void>(Method::insert, i, x); }
    // An empty list or i out of range: std::out_of_range (Python: IndexError).
    T pop(std::int64_t i = -1) { return invoke<T>(Method::pop, i); }
    // The first x: std::invalid_argument when there is none (Python: ValueError).
    void remove(const T& x) { invoke<void>(Method::remove, x); }
    // Python: index(x, start, stop): the first x at or after start and before stop (bounds
    // count from the end when negative, then are clamped to the list); none there:
    // std::invalid_argument (Python: ValueError).
    std::size_t index(const T& x, std::int64_t start = 0,
                      std::int64_t stop = std::numeric_limits<std::int64_t>::max()) const {
        return static_cast<std::size_t>(invoke<std::uint64_t>(Method::index, x, start, stop));
    }
    std::size_t count(const T& x) const { return static_cast<std::size_t>(invoke<std::uint64_t>(Method::count, x)); }
    // Python: x in a.
    bool contains(const T& x) const { return invoke<bool>(Method::contains, x); }
    // Python: len(a).
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>(Method::size)); }
    void clear() { invoke<void>(Method::clear); }
    // Python: a[:] or a.copy(): a plain copy of the whole list.
    std::vector<T> to_vector() const { return invoke<std::vector<T>>(Method::to_vector); }
    std::vector<T> copy() const { return to_vector(); }

    // Python: a[start:stop:step], as a plain vector. An empty bound is Python's None (the end
    // the step moves away from); a negative bound counts from the end; bounds past either end are
    // clamped, so a slice is never out of range. step 0: std::invalid_argument (ValueError).
    std::vector<T> slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                         std::int64_t step = 1) const {
        return invoke<std::vector<T>>(Method::slice, start, stop, step);
    }
    // Python: a[start:stop] = values: the items of the slice are replaced by any number of values.
    void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, const std::vector<T>& values) {
        set_slice(start, stop, 1, values);
    }
    // Python: a[start:stop:step] = values: with a step other than 1, exactly as many values as the
    // slice has items, else std::invalid_argument (ValueError) and the list is unchanged.
    void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, std::int64_t step,
                   const std::vector<T>& values) {
        invoke<void>(Method::set_slice, start, stop, step, values);
    }
    // Python: del a[start:stop:step].
    void del_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, std::int64_t step = 1) {
        invoke<void>(Method::del_slice, start, stop, step);
    }
    // Python: sort(reverse=...): stable (equal items keep their order, reversed or not), by T's
    // operator<. Python's key= has no counterpart: the server runs only code it was built with,
    // never a function a client names (sort a to_vector() copy with a key, then set_slice it back,
    // under a LockProxy if others write meanwhile).
    void sort(SortOptions options = {})
        requires detail::less_comparable<T>
    {
        invoke<void>(Method::sort, options.reverse);
    }
    void reverse() { invoke<void>(Method::reverse); }

    // Python: a += values (extend) and a *= n (the list n times over; n below 1 empties it; a
    // result too large to hold: std::length_error, the list unchanged).
    ListProxy& operator+=(const std::vector<T>& xs) {
        extend(xs);
        return *this;
    }
    ListProxy& operator*=(std::int64_t n) {
        invoke<void>(Method::imul, n);
        return *this;
    }
    // Python: a + values and a * n: new plain lists, made from one copy of the list.
    friend std::vector<T> operator+(const ListProxy& a, const std::vector<T>& xs) {
        std::vector<T> all = a.to_vector();
        all.insert(all.end(), xs.begin(), xs.end());
        return all;
    }
    friend std::vector<T> operator*(const ListProxy& a, std::int64_t n) {
        const std::vector<T> once = a.to_vector();
        std::vector<T> all;
        for (std::int64_t r = 0; r < n; ++r) all.insert(all.end(), once.begin(), once.end());
        return all;
    }
    friend std::vector<T> operator*(std::int64_t n, const ListProxy& a) { return a * n; }

    // Python: for x in a. One request per item, made when the iterator reaches it, so a change
    // made meanwhile shows (Python iterates a list proxy by index, a[0], a[1], ..., until
    // IndexError; it has no __iter__ for this reason); the iteration ends at the first index
    // past the end. The proxy must outlive its iterators. For a snapshot in one request,
    // iterate to_vector().
    iterator begin() const { return iterator(ItemSource{this}); }
    std::default_sentinel_t end() const { return {}; }

    MPROC_DETAIL_PROXY_ACCESS(ListProxy);

private:
    struct ItemSource {
        const ListProxy* list = nullptr;
        std::uint64_t index = 0;
        bool done = false;
        std::optional<T> next() {
            if (done) return std::nullopt;
            auto item = list->template invoke<std::optional<T>>(Method::item, index);
            if (item)
                ++index;
            else
                done = true;
            return item;
        }
    };
};

// Python: Manager().dict(): a dict from K to V in the server, in insertion order as Python's
// (keys(), values(), iteration and popitem() follow it; a key set again keeps its place).
// Blocks: every method is one round trip, run under the dict's own mutex (atomic); none waits
// for anything else. The | operators make one request (copy()) and compute here.
// Throws: those common to proxies (managers.hpp), and those noted per method.
template <class K, class V>
class DictProxy : public detail::TypedProxy<detail::DictMethod> {
    struct KeySource;

public:
    using servant = detail::DictServant<K, V>;
    using iterator = detail::FetchIterator<K, KeySource>;
    DictProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::map<K, V>{}); }

    // Python: d[k] = v.
    void set(const K& k, const V& v) { invoke<void>(Method::set, k, v); }
    // Python: d[k]; absent: std::out_of_range (KeyError).
    V get(const K& k) const { return invoke<V>(Method::get, k); }
    // Python: d.get(k, fallback).
    V get(const K& k, const V& fallback) const { return invoke<V>(Method::get_or, k, fallback); }
    // Python: k in d.
    bool contains(const K& k) const { return invoke<bool>(Method::contains, k); }
    // Absent: std::out_of_range (KeyError).
    V pop(const K& k) { return invoke<V>(Method::pop, k); }
    // Python: pop(k, default): fallback when k is absent.
    V pop(const K& k, const V& fallback) { return invoke<V>(Method::pop_or, k, fallback); }
    // The last item put in, taken out (LIFO, as Python's); an empty dict: std::out_of_range
    // (KeyError).
    std::pair<K, V> popitem() { return invoke<std::pair<K, V>>(Method::popitem); }
    // The value at k, set to v first when k is absent.
    V setdefault(const K& k, const V& v) { return invoke<V>(Method::setdefault, k, v); }
    // Python: update(more), also d |= more.
    void update(const std::map<K, V>& more) { invoke<void>(Method::update, more); }
    DictProxy& operator|=(const std::map<K, V>& more) {
        update(more);
        return *this;
    }
    // Python: d | more and more | d: new plain maps, made from one copy of the dict; on a key
    // in both, the right-hand side's value wins.
    friend std::map<K, V> operator|(const DictProxy& d, const std::map<K, V>& more) {
        std::map<K, V> all = d.copy();
        for (const auto& [k, v] : more) all.insert_or_assign(k, v);
        return all;
    }
    friend std::map<K, V> operator|(std::map<K, V> more, const DictProxy& d) {
        for (auto& [k, v] : d.copy()) more.insert_or_assign(k, std::move(v));
        return more;
    }
    // In insertion order.
    std::vector<K> keys() const { return invoke<std::vector<K>>(Method::keys); }
    std::vector<V> values() const { return invoke<std::vector<V>>(Method::values); }
    // A plain copy of the whole dict (ordered by key, as a std::map is).
    std::map<K, V> items() const { return invoke<std::map<K, V>>(Method::items); }
    // Python: copy(), which returns a plain dict.
    std::map<K, V> copy() const { return items(); }
    // Python: len(d).
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>(Method::size)); }
    void clear() { invoke<void>(Method::clear); }

    // Python: for k in d, the keys in insertion order. begin() takes the dict's size (one
    // request, as Python's iter(d) makes its iterator in the server); then one request per key,
    // made when the iterator reaches it. A dict whose size changed since begin() makes that
    // request throw std::logic_error (Python: RuntimeError, "dictionary changed size during
    // iteration"). The proxy must outlive its iterators.
    iterator begin() const { return iterator(KeySource{this, size()}); }
    std::default_sentinel_t end() const { return {}; }

    MPROC_DETAIL_PROXY_ACCESS(DictProxy);

private:
    struct KeySource {
        const DictProxy* dict = nullptr;
        std::uint64_t size = 0;
        std::uint64_t after = 0;  // the server's sequence number of the last key seen
        bool done = false;
        std::optional<K> next() {
            if (done) return std::nullopt;
            auto entry = dict->template invoke<std::optional<std::pair<std::uint64_t, K>>>(Method::next_key, size, after);
            if (!entry) {
                done = true;
                return std::nullopt;
            }
            after = entry->first;
            return std::move(entry->second);
        }
    };
};

// Python: Manager().set() (3.14): a set of T in the server, ordered by T's operator< (pop()
// takes the least); the set algebra takes the other set as a plain std::set and returns one.
// Blocks: every method is one round trip, run under the set's own mutex (atomic); none waits
// for anything else. The operators written here (o - s, s < o, s > o) make one request (copy()).
// Throws: those common to proxies (managers.hpp), and those noted per method.
template <class T>
class SetProxy : public detail::TypedProxy<detail::SetMethod> {
public:
    using servant = detail::SetServant<T>;
    SetProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::set<T>{}); }

    void add(const T& x) { invoke<void>(Method::add, x); }
    void discard(const T& x) { invoke<void>(Method::discard, x); }
    // Absent: std::out_of_range (Python: KeyError).
    void remove(const T& x) { invoke<void>(Method::remove, x); }
    // An empty set: std::out_of_range (KeyError).
    T pop() { return invoke<T>(Method::pop); }
    // Python: x in s.
    bool contains(const T& x) const { return invoke<bool>(Method::contains, x); }
    // Python: len(s).
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>(Method::size)); }
    void clear() { invoke<void>(Method::clear); }
    // A plain copy of the whole set (Python: copy()).
    std::set<T> items() const { return invoke<std::set<T>>(Method::items); }
    std::set<T> copy() const { return items(); }

    // Python: union, intersection, difference, symmetric_difference (s | o, s & o, s - o,
    // s ^ o): new plain sets. `union` is a C++ keyword, hence union_.
    std::set<T> union_(const std::set<T>& other) const { return invoke<std::set<T>>(Method::union_, other); }
    std::set<T> intersection(const std::set<T>& other) const { return invoke<std::set<T>>(Method::intersection, other); }
    std::set<T> difference(const std::set<T>& other) const { return invoke<std::set<T>>(Method::difference, other); }
    std::set<T> symmetric_difference(const std::set<T>& other) const {
        return invoke<std::set<T>>(Method::symmetric_difference, other);
    }
    // Python: s |= o, s &= o, s -= o, s ^= o: the set changed in place.
    void update(const std::set<T>& other) { invoke<void>(Method::update, other); }
    void intersection_update(const std::set<T>& other) { invoke<void>(Method::intersection_update, other); }
    void difference_update(const std::set<T>& other) { invoke<void>(Method::difference_update, other); }
    void symmetric_difference_update(const std::set<T>& other) { invoke<void>(Method::symmetric_difference_update, other); }
    friend std::set<T> operator|(const SetProxy& s, const std::set<T>& o) { return s.union_(o); }
    friend std::set<T> operator&(const SetProxy& s, const std::set<T>& o) { return s.intersection(o); }
    friend std::set<T> operator-(const SetProxy& s, const std::set<T>& o) { return s.difference(o); }
    friend std::set<T> operator^(const SetProxy& s, const std::set<T>& o) { return s.symmetric_difference(o); }
    SetProxy& operator|=(const std::set<T>& o) {
        update(o);
        return *this;
    }
    SetProxy& operator&=(const std::set<T>& o) {
        intersection_update(o);
        return *this;
    }
    SetProxy& operator-=(const std::set<T>& o) {
        difference_update(o);
        return *this;
    }
    SetProxy& operator^=(const std::set<T>& o) {
        symmetric_difference_update(o);
        return *this;
    }
    // Python: o | s, o & s, o - s, o ^ s with a plain set on the left.
    friend std::set<T> operator|(const std::set<T>& o, const SetProxy& s) { return s.union_(o); }
    friend std::set<T> operator&(const std::set<T>& o, const SetProxy& s) { return s.intersection(o); }
    friend std::set<T> operator^(const std::set<T>& o, const SetProxy& s) { return s.symmetric_difference(o); }
    friend std::set<T> operator-(const std::set<T>& o, const SetProxy& s) {
        const std::set<T> mine = s.copy();
        std::set<T> r;
        std::set_difference(o.begin(), o.end(), mine.begin(), mine.end(), std::inserter(r, r.end()));
        return r;
    }
    // Python: s <= o, s >= o, and no item in common.
    bool issubset(const std::set<T>& other) const { return invoke<bool>(Method::issubset, other); }
    bool issuperset(const std::set<T>& other) const { return invoke<bool>(Method::issuperset, other); }
    bool isdisjoint(const std::set<T>& other) const { return invoke<bool>(Method::isdisjoint, other); }
    // Python: s <= o, s < o (a proper subset), s >= o, s > o.
    friend bool operator<=(const SetProxy& s, const std::set<T>& o) { return s.issubset(o); }
    friend bool operator>=(const SetProxy& s, const std::set<T>& o) { return s.issuperset(o); }
    friend bool operator<(const SetProxy& s, const std::set<T>& o) {
        const std::set<T> mine = s.copy();
        return mine.size() < o.size() && std::includes(o.begin(), o.end(), mine.begin(), mine.end());
    }
    friend bool operator>(const SetProxy& s, const std::set<T>& o) {
        const std::set<T> mine = s.copy();
        return mine.size() > o.size() && std::includes(mine.begin(), mine.end(), o.begin(), o.end());
    }

    MPROC_DETAIL_PROXY_ACCESS(SetProxy);
};

// Python: Manager().Value(typecode, value): value() and set_value(v) are Python's v.value
// property, get() and set(v) its methods. Each is one round trip under the value's own mutex;
// throws only those common to proxies (managers.hpp).
template <class T>
class ValueProxy : public detail::TypedProxy<detail::ValueMethod> {
public:
    using servant = detail::ValueServant<T>;
    ValueProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(T{}); }

    T get() const { return invoke<T>(Method::get); }
    void set(const T& v) { invoke<void>(Method::set, v); }
    T value() const { return get(); }
    void set_value(const T& v) { set(v); }

    MPROC_DETAIL_PROXY_ACCESS(ValueProxy);
};

// Python: Manager().Array(typecode, sequence): its size fixed at creation. Each method is one
// round trip under the array's own mutex; throws those common to proxies (managers.hpp) and
// those noted.
template <class T>
class ArrayProxy : public detail::TypedProxy<detail::ArrayMethod> {
public:
    using servant = detail::ArrayServant<T>;
    ArrayProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::vector<T>{}); }

    // Out of range: std::out_of_range (Python: IndexError); negative counts from the end.
    T get(std::int64_t i) const { return invoke<T>(Method::get, i); }
    void set(std::int64_t i, const T& v) { invoke<void>(Method::set, i, v); }
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>(Method::size)); }
    std::vector<T> to_vector() const { return invoke<std::vector<T>>(Method::to_vector); }
    // Every item at once (Python: a[:] = values); another size: std::invalid_argument.
    void assign(const std::vector<T>& values) { invoke<void>(Method::assign, values); }

    MPROC_DETAIL_PROXY_ACCESS(ArrayProxy);
};

// Python: Namespace, whose attributes are set and read by name: here each holds a value of any
// serializable type, read back as the type it was set with. Each method is one round trip under
// the namespace's own mutex; throws those common to proxies (managers.hpp) and those noted.
class NamespaceProxy : public detail::TypedProxy<detail::NamespaceMethod> {
public:
    using servant = detail::NamespaceServant;
    NamespaceProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::map<std::string, std::string>{}); }

    template <class T>
    void set(const std::string& name, const T& value) {
        invoke<void>(Method::set, name, dumps(value));
    }
    // No such attribute: std::out_of_range (Python: AttributeError); another type:
    // mproc::SerializationError.
    template <class T>
    T get(const std::string& name) const {
        return loads<T>(invoke<std::string>(Method::get, name));
    }
    bool has(const std::string& name) const { return invoke<bool>(Method::has, name); }
    // No such attribute: std::out_of_range.
    void del(const std::string& name) { invoke<void>(Method::del, name); }
    std::vector<std::string> names() const { return invoke<std::vector<std::string>>(Method::names); }

    MPROC_DETAIL_PROXY_ACCESS(NamespaceProxy);
};

}  // namespace mproc::managers
