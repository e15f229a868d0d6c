// mproc/managers.hpp: objects served by a process, used through typed proxies (Python:
// multiprocessing.managers).
//
//   mproc::managers::SyncManager m = mproc::Manager();   // starts the server process
//   auto records = m.list<std::string>({"a", "b"});
//   records.append("c"); records.size(); records.get(0); records.to_vector();
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

#include <cstdint>
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

template <class T>
class ListProxy : public detail::ProxyBase {
public:
    using servant = detail::ListServant<T>;
    ListProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::vector<T>{}); }

    void append(const T& x) { invoke<void>("append", x); }
    void extend(const std::vector<T>& xs) { invoke<void>("extend", xs); }
    T get(std::int64_t i) const { return invoke<T>("get", i); }
    void set(std::int64_t i, const T& x) { invoke<void>("set", i, x); }
    void insert(std::int64_t i, const T& x) { invoke<void>("insert", i, x); }
    T pop(std::int64_t i = -1) { return invoke<T>("pop", i); }
    // The first x: std::invalid_argument when there is none (Python: ValueError).
    void remove(const T& x) { invoke<void>("remove", x); }
    std::size_t index(const T& x) const { return static_cast<std::size_t>(invoke<std::uint64_t>("index", x)); }
    std::size_t count(const T& x) const { return static_cast<std::size_t>(invoke<std::uint64_t>("count", x)); }
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    void clear() { invoke<void>("clear"); }
    std::vector<T> to_vector() const { return invoke<std::vector<T>>("to_vector"); }

    MPROC_DETAIL_PROXY_ACCESS(ListProxy);
};

template <class K, class V>
class DictProxy : public detail::ProxyBase {
public:
    using servant = detail::DictServant<K, V>;
    DictProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(std::map<K, V>{}); }

    void set(const K& k, const V& v) { invoke<void>("set", k, v); }
    // Absent: std::out_of_range (Python: KeyError).
    V get(const K& k) const { return invoke<V>("get", k); }
    V get(const K& k, const V& fallback) const { return invoke<V>("get_or", k, fallback); }
    bool contains(const K& k) const { return invoke<bool>("contains", k); }
    V pop(const K& k) { return invoke<V>("pop", k); }
    // The value at k, set to v first when k is absent.
    V setdefault(const K& k, const V& v) { return invoke<V>("setdefault", k, v); }
    void update(const std::map<K, V>& more) { invoke<void>("update", more); }
    std::vector<V> values() const {
        std::vector<V> out;
        for (auto& [k, v] : items()) out.push_back(v);
        return out;
    }
    // A plain copy of the whole dict (Python: copy(), which returns a dict).
    std::map<K, V> copy() const { return items(); }
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    std::map<K, V> items() const { return invoke<std::map<K, V>>("items"); }
    std::vector<K> keys() const {
        std::vector<K> out;
        for (auto& [k, v] : items()) out.push_back(k);
        return out;
    }
    void clear() { invoke<void>("clear"); }

    MPROC_DETAIL_PROXY_ACCESS(DictProxy);
};

// Python's manager has no set(); a set of T served the same way (add, discard, remove, pop,
// contains, update, size, clear, items).
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
    T pop() { return invoke<T>("pop"); }
    bool contains(const T& x) const { return invoke<bool>("contains", x); }
    void update(const std::set<T>& more) { invoke<void>("update", more); }
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    void clear() { invoke<void>("clear"); }
    std::set<T> items() const { return invoke<std::set<T>>("items"); }

    MPROC_DETAIL_PROXY_ACCESS(SetProxy);
};

template <class T>
class ValueProxy : public detail::ProxyBase {
public:
    using servant = detail::ValueServant<T>;
    ValueProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(T{}); }

    T get() const { return invoke<T>("get"); }
    void set(const T& v) { invoke<void>("set", v); }

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
