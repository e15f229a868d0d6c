// mproc/managers.hpp: objects served by a process, used through typed proxies (Python:
// multiprocessing.managers).
//
//   mproc::managers::SyncManager m = mproc::Manager();   // starts the server process
//   auto records = m.list<std::string>({"a", "b"});
//   records.append("c"); records.size(); records.get(0); records.to_vector();
//   for (const std::string& r : records) ...;  records.slice(1, {}); records.sort();
//   auto d = m.dict<std::string, int>();
//   d.set("k", 1); d.get("k"); d.get("missing", 0); d.contains("k"); d.keys(); d.pop("k");
//   auto q = m.Queue<int>(); auto lk = m.Lock(); auto ns = m.Namespace();
//
//   // across machines: a server program and a client program
//   mproc::managers::BaseManager server({.address = {"0.0.0.0", 50000}, .authkey = "secret"});
//   server.register_shared<mproc::managers::QueueProxy<int>>("jobs");
//   server.get_server().serve_forever();
//   mproc::managers::BaseManager client({.address = {"10.0.0.5", 50000}, .authkey = "secret"});
//   client.connect();
//   auto jobs = client.get<mproc::managers::QueueProxy<int>>("jobs");
//
// Proxies are copyable handles (copies share one reference to the served object), usable from
// several threads at once, and may be given to a child process or a pool task under every
// start method, or stored inside another managed object. The server frees an object when the
// last proxy to it, in any process, is gone.
//
// Unlike Python's managers, the server never runs code a client names: a request names a
// registered type (the templates below, instantiated in this same program, or a type exposed
// with MPROC_MANAGED) and one of its methods; its arguments are typed values. Nothing a client
// sends is decoded before it has passed the authkey handshake, frames are bounded
// (ManagerOptions::max_message_size), and a malformed request gets an error reply.
//
// When the server dies, every call fails with mproc::ProcessError naming its address, at once
// for a local server and within about 10 s over TCP (keepalive) for one whose machine vanished.
// A Lock or RLock held by a client that disconnects (or dies) is released; a blocking call
// (Queue.get, Lock.acquire, Event.wait, ...) whose client goes away gives up without taking
// anything.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/detail/managed.hpp"
#include "mproc/errors.hpp"
#include "mproc/serialize.hpp"

namespace mproc::managers {

class BaseManager;
class SyncManager;

// Every proxy type P has P::type_key() (what the server makes), P::default_init() (the bytes
// of a default-made object) and a constructor from a reference for the managers.
#define MPROC_DETAIL_PROXY_ACCESS(P)                                                        \
protected:                                                                                  \
    explicit P(std::shared_ptr<detail::ObjectRef> ref) : ProxyBase(std::move(ref)) {}       \
    friend class BaseManager;                                                               \
    friend class SyncManager

// Python: list.sort(*, key=None, reverse=False), without key (see ListProxy::sort).
struct SortOptions {
    bool reverse = false;
};

// Python: Manager().list(): a list of T in the server. Every method is one request, which the
// server runs under the list's own mutex: each is atomic, as a method of the list run in
// Python's server is. Indices count from the end when negative, as in Python.
template <class T>
class ListProxy : public detail::ProxyBase {
    struct ItemSource;

public:
    using servant = detail::ListServant<T>;
    using iterator = detail::FetchIterator<T, ItemSource>;
    ListProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::vector<T>{}); }

    void append(const T& x) { invoke<void>("append", x); }
    void extend(const std::vector<T>& xs) { invoke<void>("extend", xs); }
    // Python: a[i]; out of range: std::out_of_range (IndexError).
    T get(std::int64_t i) const { return invoke<T>("get", i); }
    // Python: a[i] = x; out of range: std::out_of_range.
    void set(std::int64_t i, const T& x) { invoke<void>("set", i, x); }
    // Before index i, clamped to the list (never out of range), as Python's.
    void insert(std::int64_t i, const T& x) { invoke<void>("insert", i, x); }
    // An empty list or i out of range: std::out_of_range (Python: IndexError).
    T pop(std::int64_t i = -1) { return invoke<T>("pop", i); }
    // The first x: std::invalid_argument when there is none (Python: ValueError).
    void remove(const T& x) { invoke<void>("remove", x); }
    // Python: index(x, start, stop): the first x at or after start and before stop (bounds
    // count from the end when negative, then are clamped to the list); none there:
    // std::invalid_argument (Python: ValueError).
    std::size_t index(const T& x, std::int64_t start = 0,
                      std::int64_t stop = std::numeric_limits<std::int64_t>::max()) const {
        return static_cast<std::size_t>(invoke<std::uint64_t>("index", x, start, stop));
    }
    std::size_t count(const T& x) const { return static_cast<std::size_t>(invoke<std::uint64_t>("count", x)); }
    // Python: x in a.
    bool contains(const T& x) const { return invoke<bool>("contains", x); }
    // Python: len(a).
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    void clear() { invoke<void>("clear"); }
    // Python: a[:] or a.copy(): a plain copy of the whole list.
    std::vector<T> to_vector() const { return invoke<std::vector<T>>("to_vector"); }
    std::vector<T> copy() const { return to_vector(); }

    // Python: a[start:stop:step], as a plain vector. An empty bound is Python's None (the end
    // the step moves away from); a negative bound counts from the end; bounds past either end are
    // clamped, so a slice is never out of range. step 0: std::invalid_argument (ValueError).
    std::vector<T> slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                         std::int64_t step = 1) const {
        return invoke<std::vector<T>>("slice", start, stop, step);
    }
    // Python: a[start:stop] = values: the items of the slice are replaced by any number of values.
    void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, const std::vector<T>& values) {
        set_slice(start, stop, 1, values);
    }
    // Python: a[start:stop:step] = values: with a step other than 1, exactly as many values as the
    // slice has items, else std::invalid_argument (ValueError) and the list is unchanged.
    void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, std::int64_t step,
                   const std::vector<T>& values) {
        invoke<void>("set_slice", start, stop, step, values);
    }
    // Python: del a[start:stop:step].
    void del_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, std::int64_t step = 1) {
        invoke<void>("del_slice", start, stop, step);
    }
    // Python: sort(reverse=...): stable (equal items keep their order, reversed or not), by T's
    // operator<. Python's key= has no counterpart: the server runs only code it was built with,
    // never a function a client names (sort a to_vector() copy with a key, then set_slice it back,
    // under a LockProxy if others write meanwhile).
    void sort(SortOptions options = {})
        requires detail::less_comparable<T>
    {
        invoke<void>("sort", options.reverse);
    }
    void reverse() { invoke<void>("reverse"); }

    // Python: a += values (extend) and a *= n (the list n times over; n below 1 empties it).
    ListProxy& operator+=(const std::vector<T>& xs) {
        extend(xs);
        return *this;
    }
    ListProxy& operator*=(std::int64_t n) {
        invoke<void>("imul", n);
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
            auto item = list->template invoke<std::optional<T>>("item", index);
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
// Every method is one request, atomic in the server.
template <class K, class V>
class DictProxy : public detail::ProxyBase {
    struct KeySource;

public:
    using servant = detail::DictServant<K, V>;
    using iterator = detail::FetchIterator<K, KeySource>;
    DictProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::map<K, V>{}); }

    // Python: d[k] = v.
    void set(const K& k, const V& v) { invoke<void>("set", k, v); }
    // Python: d[k]; absent: std::out_of_range (KeyError).
    V get(const K& k) const { return invoke<V>("get", k); }
    // Python: d.get(k, fallback).
    V get(const K& k, const V& fallback) const { return invoke<V>("get_or", k, fallback); }
    // Python: k in d.
    bool contains(const K& k) const { return invoke<bool>("contains", k); }
    // Absent: std::out_of_range (KeyError).
    V pop(const K& k) { return invoke<V>("pop", k); }
    // Python: pop(k, default): fallback when k is absent.
    V pop(const K& k, const V& fallback) { return invoke<V>("pop_or", k, fallback); }
    // The last item put in, taken out (LIFO, as Python's); an empty dict: std::out_of_range
    // (KeyError).
    std::pair<K, V> popitem() { return invoke<std::pair<K, V>>("popitem"); }
    // The value at k, set to v first when k is absent.
    V setdefault(const K& k, const V& v) { return invoke<V>("setdefault", k, v); }
    // Python: update(more), also d |= more.
    void update(const std::map<K, V>& more) { invoke<void>("update", more); }
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
    std::vector<K> keys() const { return invoke<std::vector<K>>("keys"); }
    std::vector<V> values() const { return invoke<std::vector<V>>("values"); }
    // A plain copy of the whole dict (ordered by key, as a std::map is).
    std::map<K, V> items() const { return invoke<std::map<K, V>>("items"); }
    // Python: copy(), which returns a plain dict.
    std::map<K, V> copy() const { return items(); }
    // Python: len(d).
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    void clear() { invoke<void>("clear"); }

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
            auto entry = dict->template invoke<std::optional<std::pair<std::uint64_t, K>>>("next_key", size, after);
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
// takes the least). Every method is one request, atomic in the server; the set algebra takes
// the other set as a plain std::set and returns one.
template <class T>
class SetProxy : public detail::ProxyBase {
public:
    using servant = detail::SetServant<T>;
    SetProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::set<T>{}); }

    void add(const T& x) { invoke<void>("add", x); }
    void discard(const T& x) { invoke<void>("discard", x); }
    // Absent: std::out_of_range (Python: KeyError).
    void remove(const T& x) { invoke<void>("remove", x); }
    // An empty set: std::out_of_range (KeyError).
    T pop() { return invoke<T>("pop"); }
    // Python: x in s.
    bool contains(const T& x) const { return invoke<bool>("contains", x); }
    // Python: len(s).
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    void clear() { invoke<void>("clear"); }
    // A plain copy of the whole set (Python: copy()).
    std::set<T> items() const { return invoke<std::set<T>>("items"); }
    std::set<T> copy() const { return items(); }

    // Python: union, intersection, difference, symmetric_difference (s | o, s & o, s - o,
    // s ^ o): new plain sets. `union` is a C++ keyword, hence union_.
    std::set<T> union_(const std::set<T>& other) const { return invoke<std::set<T>>("union", other); }
    std::set<T> intersection(const std::set<T>& other) const { return invoke<std::set<T>>("intersection", other); }
    std::set<T> difference(const std::set<T>& other) const { return invoke<std::set<T>>("difference", other); }
    std::set<T> symmetric_difference(const std::set<T>& other) const {
        return invoke<std::set<T>>("symmetric_difference", other);
    }
    // Python: s |= o, s &= o, s -= o, s ^= o: the set changed in place.
    void update(const std::set<T>& other) { invoke<void>("update", other); }
    void intersection_update(const std::set<T>& other) { invoke<void>("intersection_update", other); }
    void difference_update(const std::set<T>& other) { invoke<void>("difference_update", other); }
    void symmetric_difference_update(const std::set<T>& other) { invoke<void>("symmetric_difference_update", other); }
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
    bool issubset(const std::set<T>& other) const { return invoke<bool>("issubset", other); }
    bool issuperset(const std::set<T>& other) const { return invoke<bool>("issuperset", other); }
    bool isdisjoint(const std::set<T>& other) const { return invoke<bool>("isdisjoint", other); }
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
// property, get() and set(v) its methods.
template <class T>
class ValueProxy : public detail::ProxyBase {
public:
    using servant = detail::ValueServant<T>;
    ValueProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(T{}); }

    T get() const { return invoke<T>("get"); }
    void set(const T& v) { invoke<void>("set", v); }
    T value() const { return get(); }
    void set_value(const T& v) { set(v); }

    MPROC_DETAIL_PROXY_ACCESS(ValueProxy);
};

// Python: Manager().Array(typecode, sequence): its size fixed at creation.
template <class T>
class ArrayProxy : public detail::ProxyBase {
public:
    using servant = detail::ArrayServant<T>;
    ArrayProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::vector<T>{}); }

    // Out of range: std::out_of_range (Python: IndexError); negative counts from the end.
    T get(std::int64_t i) const { return invoke<T>("get", i); }
    void set(std::int64_t i, const T& v) { invoke<void>("set", i, v); }
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    std::vector<T> to_vector() const { return invoke<std::vector<T>>("to_vector"); }
    // Every item at once (Python: a[:] = values); another size: std::invalid_argument.
    void assign(const std::vector<T>& values) { invoke<void>("assign", values); }

    MPROC_DETAIL_PROXY_ACCESS(ArrayProxy);
};

// Python: Namespace, whose attributes are set and read by name: here each holds a value of any
// serializable type, read back as the type it was set with.
class NamespaceProxy : public detail::ProxyBase {
public:
    using servant = detail::NamespaceServant;
    NamespaceProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::map<std::string, std::string>{}); }

    template <class T>
    void set(const std::string& name, const T& value) {
        invoke<void>("set", name, dumps(value));
    }
    // No such attribute: std::out_of_range (Python: AttributeError); another type:
    // mproc::SerializationError.
    template <class T>
    T get(const std::string& name) const {
        return loads<T>(invoke<std::string>("get", name));
    }
    bool has(const std::string& name) const { return invoke<bool>("has", name); }
    void del(const std::string& name) { invoke<void>("del", name); }
    std::vector<std::string> names() const { return invoke<std::vector<std::string>>("names"); }

    MPROC_DETAIL_PROXY_ACCESS(NamespaceProxy);
};

// Python: Manager().Queue(maxsize): put/get with block and timeout (mproc::Full / mproc::Empty),
// qsize, empty, full. A get whose client goes away takes nothing.
template <class T>
class QueueProxy : public detail::ProxyBase {
public:
    using servant = detail::QueueServant<T>;
    QueueProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(0L); }

    void put(const T& x, bool block = true, Timeout timeout = {}) { invoke<void>("put", x, block, timeout); }
    void put_nowait(const T& x) { put(x, false); }
    T get(bool block = true, Timeout timeout = {}) { return invoke<T>("get", block, timeout); }
    T get_nowait() { return get(false); }
    std::size_t qsize() const { return static_cast<std::size_t>(invoke<std::uint64_t>("qsize")); }
    bool empty() const { return qsize() == 0; }
    bool full() const {
        const auto max = invoke<std::int64_t>("maxsize");
        return max > 0 && static_cast<std::int64_t>(qsize()) >= max;
    }

    MPROC_DETAIL_PROXY_ACCESS(QueueProxy);
};

// Python: Manager().JoinableQueue(): a QueueProxy with task_done and join.
template <class T>
class JoinableQueueProxy : public QueueProxy<T> {
public:
    JoinableQueueProxy() = default;
    // More calls than items put: std::logic_error (Python: ValueError).
    void task_done() { this->template invoke<void>("task_done"); }
    void join() { this->template invoke<void>("join"); }

private:
    explicit JoinableQueueProxy(std::shared_ptr<detail::ObjectRef> ref) : QueueProxy<T>(std::move(ref)) {}
    friend class BaseManager;
    friend class SyncManager;
};

// Python: Manager().Lock() / RLock(): acquire(block, timeout), release, and lock/unlock/try_lock
// for std::lock_guard. The owner is the calling thread's connection: an RLock is recursive per
// client thread, and a lock still held when its client disconnects or dies is released.
class LockProxy : public detail::ProxyBase {
public:
    LockProxy() = default;
    static std::string type_key() { return "Lock"; }
    static std::string default_init() { return {}; }

    bool acquire(bool block = true, Timeout timeout = {}) { return invoke<bool>("acquire", block, timeout); }
    // Not held (or, for an RLock, held by another client): std::logic_error.
    void release() { invoke<void>("release"); }
    bool locked() const { return invoke<bool>("locked"); }
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }

    MPROC_DETAIL_PROXY_ACCESS(LockProxy);
};

class RLockProxy : public LockProxy {
public:
    RLockProxy() = default;
    static std::string type_key() { return "RLock"; }

private:
    explicit RLockProxy(std::shared_ptr<detail::ObjectRef> ref) : LockProxy(std::move(ref)) {}
    friend class BaseManager;
    friend class SyncManager;
};

// Python: Manager().Semaphore(value) / BoundedSemaphore(value).
class SemaphoreProxy : public detail::ProxyBase {
public:
    SemaphoreProxy() = default;
    static std::string type_key() { return "Semaphore"; }
    static std::string default_init() { return detail::pack(1); }

    bool acquire(bool block = true, Timeout timeout = {}) { return invoke<bool>("acquire", block, timeout); }
    // A BoundedSemaphore released past its value: std::logic_error (Python: ValueError).
    void release(int n = 1) { invoke<void>("release", n); }
    int get_value() const { return invoke<int>("get_value"); }

    MPROC_DETAIL_PROXY_ACCESS(SemaphoreProxy);
};

class BoundedSemaphoreProxy : public SemaphoreProxy {
public:
    BoundedSemaphoreProxy() = default;
    static std::string type_key() { return "BoundedSemaphore"; }

private:
    explicit BoundedSemaphoreProxy(std::shared_ptr<detail::ObjectRef> ref) : SemaphoreProxy(std::move(ref)) {}
    friend class BaseManager;
    friend class SyncManager;
};

// Python: Manager().Condition(): with a recursive lock of its own (held by client thread, as
// RLockProxy's). wait and notify without holding it: std::logic_error (Python: RuntimeError).
class ConditionProxy : public detail::ProxyBase {
public:
    ConditionProxy() = default;
    static std::string type_key() { return "Condition"; }
    static std::string default_init() { return {}; }

    bool acquire(bool block = true, Timeout timeout = {}) { return invoke<bool>("acquire", block, timeout); }
    void release() { invoke<void>("release"); }
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }
    // False at the timeout.
    bool wait(Timeout timeout = {}) { return invoke<bool>("wait", timeout); }
    template <class Pred>
    bool wait_for(Pred pred, Timeout timeout = {});
    void notify(int n = 1) { invoke<void>("notify", n); }
    void notify_all() { invoke<void>("notify_all"); }

    MPROC_DETAIL_PROXY_ACCESS(ConditionProxy);
};

// Python: Manager().Event().
class EventProxy : public detail::ProxyBase {
public:
    EventProxy() = default;
    static std::string type_key() { return "Event"; }
    static std::string default_init() { return {}; }

    bool is_set() const { return invoke<bool>("is_set"); }
    void set() { invoke<void>("set"); }
    void clear() { invoke<void>("clear"); }
    // False at the timeout.
    bool wait(Timeout timeout = {}) { return invoke<bool>("wait", timeout); }

    MPROC_DETAIL_PROXY_ACCESS(EventProxy);
};

// Python: Manager().Barrier(parties, timeout=None): wait returns this party's index (0 to
// parties - 1); a broken barrier (abort, a timeout, a party's client gone) raises
// mproc::BrokenBarrierError.
class BarrierProxy : public detail::ProxyBase {
public:
    BarrierProxy() = default;
    static std::string type_key() { return "Barrier"; }
    static std::string default_init() { return detail::pack(1, Timeout{}); }

    int wait(Timeout timeout = {}) { return invoke<int>("wait", timeout); }
    void reset() { invoke<void>("reset"); }
    void abort() { invoke<void>("abort"); }
    int parties() const { return invoke<int>("parties"); }
    int n_waiting() const { return invoke<int>("n_waiting"); }
    bool broken() const { return invoke<bool>("broken"); }

    MPROC_DETAIL_PROXY_ACCESS(BarrierProxy);
};

// A proxy to an object of a user type exposed with MPROC_MANAGED:
//   counter.call(&Counter::add, 5);  int v = counter.call(&Counter::value);
template <class T>
class Proxy : public detail::ProxyBase {
public:
    using servant = detail::UserServant<T>;
    Proxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() {
        if constexpr (serializable<T>) return detail::pack(false);
        else return {};
    }

    // Calls an exposed method in the server; one that was not exposed: std::invalid_argument.
    template <class M, class... A>
    typename detail::method_traits<M>::result call(M method, A&&... args) const {
        using Traits = detail::method_traits<M>;
        std::string_view name;
        std::apply([&](const auto&... e) { (void)((same_method(e.second, method) && (name = e.first, true)) || ...); },
                   detail::exposed<T>::methods());
        if (name.empty())
            throw std::invalid_argument(std::string("mproc: that method of ") + detail::exposed<T>::name + " is not exposed");
        return invoke<typename Traits::result>(name, typename Traits::args(std::forward<A>(args)...));
    }

private:
    template <class E, class M>
    static bool same_method(E e, M m) {
        if constexpr (std::is_same_v<E, M>) return e == m;
        else return false;
    }
    MPROC_DETAIL_PROXY_ACCESS(Proxy);
};

namespace detail {
class ServerCore;
}

// Python: managers.Server, from BaseManager::get_server(): serves in the calling process.
class Server {
public:
    const connection::Address& address() const;
    // Serves until a client asks the manager to shut down or stop() is called. (Python's exits
    // the process there; this returns, so the caller decides.)
    void serve_forever();
    // Ends serve_forever, from another thread or a signal-free context.
    void stop();

private:
    explicit Server(std::shared_ptr<detail::ServerCore> core) : core_(std::move(core)) {}
    std::shared_ptr<detail::ServerCore> core_;
    friend class BaseManager;
};

// Python: multiprocessing.managers.BaseManager. One of start() (a server process of its own),
// connect() (to a server that runs elsewhere) or get_server() (to serve from this process).
class BaseManager {
public:
    // An address other than a Unix socket or loopback without an explicit, non-empty authkey:
    // std::invalid_argument (a manager on the network must not be open to anyone who reaches it).
    explicit BaseManager(ManagerOptions options = {});
    BaseManager(BaseManager&&) noexcept;
    BaseManager& operator=(BaseManager&&) noexcept;
    virtual ~BaseManager();  // shuts a started server down, as Python's __exit__

    // Starts the server process; returns once it listens. Twice: std::logic_error.
    void start();
    // Connects to a running server (the first call is made now, so a wrong address or authkey
    // fails here: ProcessError, AuthenticationError).
    void connect();
    // This process serves: the objects live here, until serve_forever returns.
    Server get_server();
    // Stops a started server (its objects go with it); proxies fail afterwards. A connected
    // manager only closes this process's connections: the server serves on. Idempotent.
    void shutdown();
    // The address the server listens on (with the real port after port 0).
    const connection::Address& address() const;
    // How many objects the server holds (Python: the debugging helper _number_of_objects()).
    std::size_t number_of_objects() const;

    // Python: register(name, callable=lambda: shared_object): a P object (P a proxy type, such
    // as QueueProxy<int>, or Proxy<UserType>) that the server makes when it starts and every
    // client reaches by name with get<P>(name). Before start() or get_server().
    template <class P>
    void register_shared(const std::string& name) {
        register_shared_raw(name, P::type_key(), P::default_init());
    }
    // The object shared under `name`: another type than registered: std::invalid_argument
    // naming both; no such name: std::out_of_range.
    template <class P>
    P get(const std::string& name) {
        return P(detail::lookup(link(), name, P::type_key()));
    }
    // A new object of a type exposed with MPROC_MANAGED, default-made or a copy of `initial`.
    template <class T>
    Proxy<T> create() {
        return Proxy<T>(make(Proxy<T>::type_key(), Proxy<T>::default_init()));
    }
    template <class T>
        requires serializable<T>
    Proxy<T> create(const T& initial) {
        return Proxy<T>(make(Proxy<T>::type_key(), detail::pack(true, initial)));
    }

protected:
    std::shared_ptr<detail::ObjectRef> make(const std::string& key, const std::string& init);
    const std::shared_ptr<detail::Link>& link() const;
    void register_shared_raw(const std::string& name, const std::string& key, const std::string& init);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Python: multiprocessing.managers.SyncManager: a BaseManager with the standard types.
class SyncManager : public BaseManager {
public:
    using BaseManager::BaseManager;

    template <class T>
    ListProxy<T> list(const std::vector<T>& initial = {}) {
        return ListProxy<T>(make(ListProxy<T>::type_key(), detail::pack(initial)));
    }
    template <class K, class V>
    DictProxy<K, V> dict(const std::map<K, V>& initial = {}) {
        return DictProxy<K, V>(make(DictProxy<K, V>::type_key(), detail::pack(initial)));
    }
    template <class T>
    SetProxy<T> set(const std::set<T>& initial = {}) {
        return SetProxy<T>(make(SetProxy<T>::type_key(), detail::pack(initial)));
    }
    template <class T>
    ValueProxy<T> Value(const T& initial = T{}) {
        return ValueProxy<T>(make(ValueProxy<T>::type_key(), detail::pack(initial)));
    }
    template <class T>
    ArrayProxy<T> Array(const std::vector<T>& initial) {
        return ArrayProxy<T>(make(ArrayProxy<T>::type_key(), detail::pack(initial)));
    }
    // maxsize below 1: unbounded, as in Python.
    template <class T>
    QueueProxy<T> Queue(long maxsize = 0) {
        return QueueProxy<T>(make(QueueProxy<T>::type_key(), detail::pack(maxsize)));
    }
    template <class T>
    JoinableQueueProxy<T> JoinableQueue(long maxsize = 0) {
        return JoinableQueueProxy<T>(make(QueueProxy<T>::type_key(), detail::pack(maxsize)));
    }
    NamespaceProxy Namespace() { return NamespaceProxy(make(NamespaceProxy::type_key(), NamespaceProxy::default_init())); }
    LockProxy Lock() { return LockProxy(make(LockProxy::type_key(), {})); }
    RLockProxy RLock() { return RLockProxy(make(RLockProxy::type_key(), {})); }
    // value below 0: std::invalid_argument.
    SemaphoreProxy Semaphore(int value = 1) { return SemaphoreProxy(make(SemaphoreProxy::type_key(), detail::pack(value))); }
    BoundedSemaphoreProxy BoundedSemaphore(int value = 1) {
        return BoundedSemaphoreProxy(make(BoundedSemaphoreProxy::type_key(), detail::pack(value)));
    }
    ConditionProxy Condition() { return ConditionProxy(make(ConditionProxy::type_key(), {})); }
    EventProxy Event() { return EventProxy(make(EventProxy::type_key(), {})); }
    // parties below 1: std::invalid_argument.
    BarrierProxy Barrier(int parties, Timeout timeout = {}) {
        return BarrierProxy(make(BarrierProxy::type_key(), detail::pack(parties, timeout)));
    }
};

template <class Pred>
bool ConditionProxy::wait_for(Pred pred, Timeout timeout) {
    const auto deadline = detail::deadline_after(timeout);
    bool ok = pred();
    while (!ok) {
        Timeout left;
        if (deadline) {
            left = std::chrono::duration<double>(*deadline - detail::Clock::now());
            if (left->count() <= 0) break;
        }
        wait(left);
        ok = pred();
    }
    return ok;
}

#undef MPROC_DETAIL_PROXY_ACCESS

}  // namespace mproc::managers

namespace mproc {
// A started SyncManager (Python: multiprocessing.Manager()).
managers::SyncManager Manager(managers::ManagerOptions options = {});
}  // namespace mproc
