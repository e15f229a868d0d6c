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
// last proxy to it, in any process, is gone. The container proxies (ListProxy, DictProxy,
// SetProxy, ValueProxy, ArrayProxy, NamespaceProxy) are in mproc/manager_containers.hpp,
// included here.
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
//
// Contracts of every proxy method (each class and method notes what it adds):
// - Blocks on one round trip to the server, over the calling thread's own connection (made at
//   the thread's first call), and in the server on the object's own mutex, which a call holds
//   only while its method runs, never while it waits. A method that waits (a Queue's get, put
//   and join, acquire, Condition, Event and Barrier wait) waits in the server until its
//   condition or its timeout. A Timeout is Python's: empty waits forever, a negative one is
//   zero; NaN is std::invalid_argument (at the latest when the call would wait).
// - The caller needs to hold nothing, except for ConditionProxy's wait and notify (see there).
// - Throws mproc::ProcessError when the server cannot be reached or has died, naming its
//   address; mproc::AuthenticationError when a thread's first call meets a wrong authkey;
//   std::logic_error on a default-made (empty) proxy; and an error raised in the server as its
//   own type (std::out_of_range, std::invalid_argument, std::logic_error, mproc::Full, ...; a
//   user type's own exception type as mproc::RemoteError unless MPROC_REGISTER_EXCEPTION names it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/manager_client.hpp"
#include "mproc/detail/manager_container_servants.hpp"
#include "mproc/detail/manager_user_types.hpp"
#include "mproc/errors.hpp"
#include "mproc/manager_containers.hpp"
#include "mproc/serialize.hpp"

namespace mproc::managers {

class BaseManager;
class SyncManager;

// Python: BaseManager(address=None, authkey=None, ...); the rest is mproc's.
struct ManagerOptions {
    // Empty: a fresh Linux abstract Unix socket name. {"127.0.0.1", 0}: loopback TCP on a free
    // port (address() tells which). Any other host needs an explicit authkey.
    connection::Address address = {};
    // Empty: the current process's authkey (children inherit it; another program cannot know it).
    std::optional<std::string> authkey = {};
    std::string start_method = {};  // of the server process (start())
    // A request or reply larger than this closes its connection (the server serves the others).
    std::size_t max_message_size = std::size_t{64} << 20;
    // Connections beyond this many at once are closed as soon as they are accepted.
    int max_connections = 256;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(address, authkey, start_method, max_message_size, max_connections);
    }
};

// Python: Manager().Queue(maxsize): put/get with block and timeout, qsize, empty, full.
// Blocks: put waits for room (a bounded queue), get for an item, each for at most `timeout`
// and not at all with block false; a get whose client goes away takes nothing. qsize, empty
// and full are round trips (full two of them) and never wait.
// Throws: put, mproc::Full when no room came; get, mproc::Empty when no item came; and those
// common to proxies.
template <class T>
class QueueProxy : public detail::TypedProxy<detail::QueueMethod> {
public:
    using servant = detail::QueueServant<T>;
    QueueProxy() { (void)detail::Registered<servant>::done; }
    static std::string type_key() { return (void)detail::Registered<servant>::done, servant::key(); }
    static std::string default_init() { return detail::pack(0L); }

    void put(const T& x, bool block = true, Timeout timeout = {}) { invoke<void>(Method::put, x, block, timeout); }
    void put_nowait(const T& x) { put(x, false); }
    T get(bool block = true, Timeout timeout = {}) { return invoke<T>(Method::get, block, timeout); }
    T get_nowait() { return get(false); }
    std::size_t qsize() const { return static_cast<std::size_t>(invoke<std::uint64_t>(Method::qsize)); }
    bool empty() const { return qsize() == 0; }
    bool full() const {
        const auto max = invoke<std::int64_t>(Method::maxsize);
        return max > 0 && static_cast<std::int64_t>(qsize()) >= max;
    }

    MPROC_DETAIL_PROXY_ACCESS(QueueProxy);
};

// Python: Manager().JoinableQueue(): a QueueProxy with task_done and join.
template <class T>
class JoinableQueueProxy : public QueueProxy<T> {
public:
    JoinableQueueProxy() = default;
    // Never waits. More calls than items put: std::logic_error (Python: ValueError).
    void task_done() { this->template invoke<void>(detail::QueueMethod::task_done); }
    // Waits, with no timeout, until every item put has had its task_done.
    void join() { this->template invoke<void>(detail::QueueMethod::join); }

private:
    explicit JoinableQueueProxy(std::shared_ptr<detail::ObjectRef> ref) : QueueProxy<T>(std::move(ref)) {}
    friend class BaseManager;
    friend class SyncManager;
};

// Python: Manager().Lock() / RLock(): acquire(block, timeout), release, and lock/unlock/try_lock
// for std::lock_guard. The owner is the calling thread's connection: an RLock is recursive per
// client thread, and a lock still held when its client disconnects or dies is released.
// Blocks: acquire (and lock) waits until the lock is free, for at most `timeout` and not at all
// with block false (try_lock): false when it did not take it. release and locked never wait.
class LockProxy : public detail::TypedProxy<detail::LockMethod> {
public:
    LockProxy() = default;
    static std::string type_key() { return detail::SyncTypeKey::lock; }
    static std::string default_init() { return {}; }

    bool acquire(bool block = true, Timeout timeout = {}) { return invoke<bool>(Method::acquire, block, timeout); }
    // Not held (or, for an RLock, held by another client thread): std::logic_error. A Lock (not
    // an RLock) may be released by a thread other than the one that took it, as in Python.
    void release() { invoke<void>(Method::release); }
    bool locked() const { return invoke<bool>(Method::locked); }
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }

    MPROC_DETAIL_PROXY_ACCESS(LockProxy);
};

class RLockProxy : public LockProxy {
public:
    RLockProxy() = default;
    static std::string type_key() { return detail::SyncTypeKey::rlock; }

private:
    explicit RLockProxy(std::shared_ptr<detail::ObjectRef> ref) : LockProxy(std::move(ref)) {}
    friend class BaseManager;
    friend class SyncManager;
};

// Python: Manager().Semaphore(value) / BoundedSemaphore(value).
// Blocks: acquire waits until the value is above zero, for at most `timeout` and not at all with
// block false: false when it did not take one. release and get_value never wait.
class SemaphoreProxy : public detail::TypedProxy<detail::SemaphoreMethod> {
public:
    SemaphoreProxy() = default;
    static std::string type_key() { return detail::SyncTypeKey::semaphore; }
    static std::string default_init() { return detail::pack(1); }

    bool acquire(bool block = true, Timeout timeout = {}) { return invoke<bool>(Method::acquire, block, timeout); }
    // n below 1: std::invalid_argument. A BoundedSemaphore released past its value:
    // std::logic_error (Python: ValueError).
    void release(int n = 1) { invoke<void>(Method::release, n); }
    int get_value() const { return invoke<int>(Method::get_value); }

    MPROC_DETAIL_PROXY_ACCESS(SemaphoreProxy);
};

class BoundedSemaphoreProxy : public SemaphoreProxy {
public:
    BoundedSemaphoreProxy() = default;
    static std::string type_key() { return detail::SyncTypeKey::bounded_semaphore; }

private:
    explicit BoundedSemaphoreProxy(std::shared_ptr<detail::ObjectRef> ref) : SemaphoreProxy(std::move(ref)) {}
    friend class BaseManager;
    friend class SyncManager;
};

// Python: Manager().Condition(): with a recursive lock of its own, held by client thread as
// RLockProxy's (acquire, release, lock, unlock, try_lock are RLockProxy's).
// Caller must hold: the condition's lock, taken by this thread, for wait, wait_for, notify and
// notify_all; without it, std::logic_error (Python: RuntimeError).
class ConditionProxy : public detail::TypedProxy<detail::ConditionMethod> {
public:
    ConditionProxy() = default;
    static std::string type_key() { return detail::SyncTypeKey::condition; }
    static std::string default_init() { return {}; }

    bool acquire(bool block = true, Timeout timeout = {}) { return invoke<bool>(Method::acquire, block, timeout); }
    void release() { invoke<void>(Method::release); }
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }
    // Lets the lock go (at any depth) and waits for a notify, for at most `timeout`; then waits,
    // with no timeout, to take the lock back at its depth. False at the timeout. A client gone
    // meanwhile does not take the lock back.
    bool wait(Timeout timeout = {}) { return invoke<bool>(Method::wait, timeout); }
    // Python: wait_for(predicate, timeout): waits until pred(), run here with the lock held,
    // returns true, or `timeout` has passed in all; returns the last pred().
    template <class Pred>
    bool wait_for(Pred pred, Timeout timeout = {});
    // Wakes the n (or all) longest waiting; never waits.
    void notify(int n = 1) { invoke<void>(Method::notify, n); }
    void notify_all() { invoke<void>(Method::notify_all); }

    MPROC_DETAIL_PROXY_ACCESS(ConditionProxy);
};

// Python: Manager().Event().
// Blocks: wait waits until the flag is set, for at most `timeout`: false at the timeout.
// is_set, set and clear never wait.
class EventProxy : public detail::TypedProxy<detail::EventMethod> {
public:
    EventProxy() = default;
    static std::string type_key() { return detail::SyncTypeKey::event; }
    static std::string default_init() { return {}; }

    bool is_set() const { return invoke<bool>(Method::is_set); }
    void set() { invoke<void>(Method::set); }
    void clear() { invoke<void>(Method::clear); }
    bool wait(Timeout timeout = {}) { return invoke<bool>(Method::wait, timeout); }

    MPROC_DETAIL_PROXY_ACCESS(EventProxy);
};

// Python: Manager().Barrier(parties, timeout=None): wait returns this party's index (0 to
// parties - 1).
// Blocks: wait waits until `parties` parties wait, for at most `timeout` (empty: the barrier's
// own timeout). The other methods never wait.
// Throws: wait, mproc::BrokenBarrierError when the barrier is or becomes broken (abort, reset
// while parties wait, a timeout, a waiting party's client gone).
class BarrierProxy : public detail::TypedProxy<detail::BarrierMethod> {
public:
    BarrierProxy() = default;
    static std::string type_key() { return detail::SyncTypeKey::barrier; }
    static std::string default_init() { return detail::pack(1, Timeout{}); }

    int wait(Timeout timeout = {}) { return invoke<int>(Method::wait, timeout); }
    void reset() { invoke<void>(Method::reset); }
    void abort() { invoke<void>(Method::abort); }
    int parties() const { return invoke<int>(Method::parties); }
    int n_waiting() const { return invoke<int>(Method::n_waiting); }
    bool broken() const { return invoke<bool>(Method::broken); }

    MPROC_DETAIL_PROXY_ACCESS(BarrierProxy);
};

// A proxy to an object of a user type exposed with MPROC_MANAGED:
//   counter.call(&Counter::add, 5);  int v = counter.call(&Counter::value);
// Blocks: a round trip, the method run in the server under the object's own mutex.
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

    // Calls an exposed method in the server; one that was not exposed: std::invalid_argument
    // (thrown here, before any request). What the method throws comes back as its type.
    template <class M, class... A>
    typename detail::method_traits<M>::result call(M method, A&&... args) const {
        using Traits = detail::method_traits<M>;
        const std::string_view name = detail::exposed_name<T>(method);
        if (name.empty())
            throw std::invalid_argument(std::string("mproc: that method of ") + detail::exposed<T>::name + " is not exposed");
        return invoke_named<typename Traits::result>(name, typename Traits::args(std::forward<A>(args)...));
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
    // Blocks: serves, in the calling thread (each client on a thread of its own), until a client
    // asks the manager to shut down or stop() is called; then waits up to 5 s for the client
    // threads to end. (Python's exits the process there; this returns, so the caller decides.)
    void serve_forever();
    // Ends serve_forever, from another thread or a signal-free context; never waits.
    void stop();

private:
    explicit Server(std::shared_ptr<detail::ServerCore> core) : core_(std::move(core)) {}
    std::shared_ptr<detail::ServerCore> core_;
    friend class BaseManager;
};

// Python: multiprocessing.managers.BaseManager. One of start() (a server process of its own),
// connect() (to a server that runs elsewhere) or get_server() (to serve from this process).
// A manager is used by one thread at a time (the proxies it makes, by any number). Its calls
// that reach the server (number_of_objects, get, create, SyncManager's factories) are one round
// trip each and throw what a proxy's calls throw (see the top of this file); before start,
// connect or get_server, or after shutdown, they throw std::logic_error.
class BaseManager {
public:
    // An address other than a Unix socket or loopback without an explicit, non-empty authkey,
    // or max_message_size below 1024: std::invalid_argument (a manager on the network must not
    // be open to anyone who reaches it).
    explicit BaseManager(ManagerOptions options = {});
    BaseManager(BaseManager&&) noexcept;
    BaseManager& operator=(BaseManager&&) noexcept;  // shuts down what it held first
    virtual ~BaseManager();  // shuts a started server down, as Python's __exit__

    // Starts the server process; blocks until it listens (at most 30 s). Twice, or after
    // connect or get_server: std::logic_error. No answer within 30 s, or the server could not
    // listen: mproc::ProcessError.
    void start();
    // Connects to a running server (the first call is made now, so a wrong address or authkey
    // fails here: ProcessError, AuthenticationError). After start or get_server: std::logic_error.
    void connect();
    // This process serves: the objects live here, until serve_forever returns. Listens now:
    // an address that cannot be listened on throws std::system_error. After start or connect:
    // std::logic_error.
    Server get_server();
    // Stops a started server (its objects go with it); proxies fail afterwards. Blocks until the
    // server process has ended (killed after 5 s). A connected manager only closes this
    // process's connections: the server serves on. Idempotent; throws nothing.
    void shutdown();
    // The address the server listens on (with the real port after port 0).
    const connection::Address& address() const;
    // How many objects the server holds (Python: the debugging helper _number_of_objects()).
    std::size_t number_of_objects() const;

    // Python: register(name, callable=lambda: shared_object): a P object (P a proxy type, such
    // as QueueProxy<int>, or Proxy<UserType>) that the server makes when it starts and every
    // client reaches by name with get<P>(name). Before start() or get_server(), else
    // std::logic_error.
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

// Python: multiprocessing.managers.SyncManager: a BaseManager with the standard types. Each
// factory is one round trip that makes the object in the server.
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
    const auto deadline = mproc::detail::Deadline::after(timeout);
    bool ok = pred();
    while (!ok && !deadline.expired()) {
        wait(deadline.remaining());
        ok = pred();
    }
    return ok;
}

}  // namespace mproc::managers

namespace mproc {
// A started SyncManager (Python: multiprocessing.Manager()).
managers::SyncManager Manager(managers::ManagerOptions options = {});
}  // namespace mproc
