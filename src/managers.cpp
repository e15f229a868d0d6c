// Managers: a server holding typed objects (in a process of its own, or in the caller's), and
// the client side of its protocol.
//
// Protocol, over an authenticated Connection (Python's handshake, done by the server thread of
// that connection, so a silent client holds up nobody), one request and one reply at a time
// per connection:
//   request: u8 op, u64 object id, string name, string arguments (an archive)
//   reply:   u8 0 and the result's bytes, or u8 1 and an exception (as a pool's)
// ops: Create (name: a registered type key; arguments: its initial value) -> u64 id;
//      Lookup (name: a shared object's name; arguments: the type key expected) -> u64 id;
//      Call (name: a method); IncRef; DecRef (the last frees the object); Count (objects
//      held); Shutdown.
#include "mproc/managers.hpp"

#include <atomic>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "mproc/detail/exceptions.hpp"
#include "mproc/process.hpp"
#include "platform/platform.hpp"
#include "exit_hooks.hpp"

namespace mproc::managers {
namespace detail {

namespace {
enum Op : std::uint8_t { kCreate = 1, kCall = 2, kIncRef = 3, kDecRef = 4, kShutdown = 5, kCount = 6, kLookup = 7 };
// What a client accepts in a reply.
constexpr std::size_t kClientMaxFrame = std::size_t{64} << 20;
// A client has this long to pass the handshake.
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
// TCP keepalive on both ends: a peer whose machine vanished is noticed within about
// kKeepIdle + kKeepInterval * kKeepCount seconds.
constexpr int kKeepIdle = 4, kKeepInterval = 1, kKeepCount = 5;

std::mutex& types_mutex() {
    static std::mutex m;
    return m;
}
std::map<std::string, Factory>& types() {
    static std::map<std::string, Factory> t;
    return t;
}
}  // namespace

void register_type(const std::string& key, Factory make) {
    std::lock_guard g(types_mutex());
    types().emplace(key, make);
}

namespace {
Factory find_type(const std::string& key) {
    std::lock_guard g(types_mutex());
    auto it = types().find(key);
    return it == types().end() ? nullptr : it->second;
}
}  // namespace

void no_method(std::string_view what, std::string_view method) {
    throw std::invalid_argument("mproc: a managed " + std::string(what) + " has no method '" + std::string(method) + "'");
}

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
    if (m == "set") {
        auto name = take<std::string>(in);
        attrs_.insert_or_assign(std::move(name), take<std::string>(in));
    } else if (m == "get") {
        const auto name = take<std::string>(in);
        auto it = attrs_.find(name);
        if (it == attrs_.end()) throw missing(name);
        out(it->second);
    } else if (m == "has") {
        out(attrs_.count(take<std::string>(in)) != 0);
    } else if (m == "del") {
        const auto name = take<std::string>(in);
        if (attrs_.erase(name) == 0) throw missing(name);
    } else if (m == "names") {
        std::vector<std::string> names;
        for (auto& [k, v] : attrs_) names.push_back(k);
        out(names);
    } else {
        no_method("Namespace", m);
    }
}

// --- the client side ---

class Link : public std::enable_shared_from_this<Link> {
public:
    Link(connection::Address address, std::string authkey) : address_(std::move(address)), authkey_(std::move(authkey)) {}
    ~Link();
    // This thread's connection, made on first use.
    std::shared_ptr<Connection> connection();
    void forget_thread(std::thread::id t);
    const connection::Address& address() const noexcept { return address_; }
    const std::string& authkey() const noexcept { return authkey_; }
    std::string key() const { return address_.str() + '\n' + authkey_; }

private:
    connection::Address address_;
    std::string authkey_;
    unsigned generation_ = platform::fork_generation();  // of the process that made conns_
    std::map<std::thread::id, std::shared_ptr<Connection>> conns_;  // under the registry's lock
};

namespace {
// Every Link of this process, under one lock. The lock is held across fork, so a child never
// inherits it held by a thread it does not have; a forked child drops its parent's connections
// (they are the parent's streams) on first use.
struct Links {
    std::mutex mu;
    std::map<std::string, std::weak_ptr<Link>> by_key;
};
Links& links() {
    // Never destroyed: proxies may still go at static destruction.
    static Links* l = [] {
        auto* ls = new Links;
        platform::at_fork([] { links().mu.lock(); }, [] { links().mu.unlock(); }, [] { links().mu.unlock(); });
        return ls;
    }();
    return *l;
}

// A thread's connections go when the thread ends (the server's thread for it ends too).
struct ThreadLinks {
    std::vector<std::weak_ptr<Link>> used;
    ~ThreadLinks() {
        const auto me = std::this_thread::get_id();
        for (auto& w : used)
            if (auto l = w.lock()) l->forget_thread(me);
    }
};
thread_local ThreadLinks t_links;
}  // namespace

Link::~Link() {
    std::lock_guard g(links().mu);
    auto it = links().by_key.find(key());
    if (it != links().by_key.end() && it->second.expired()) links().by_key.erase(it);
}

std::shared_ptr<Connection> Link::connection() {
    const auto me = std::this_thread::get_id();
    {
        std::lock_guard g(links().mu);
        if (generation_ != platform::fork_generation()) {
            conns_.clear();
            generation_ = platform::fork_generation();
        }
        auto it = conns_.find(me);
        if (it != conns_.end() && !it->second->closed()) return it->second;
    }
    auto c = std::make_shared<Connection>(connection::Client(address_, authkey_));
    c->set_max_message_size(kClientMaxFrame);
    c->set_read_ahead();  // this thread's alone, one request at a time
    platform::set_keepalive(c->fileno(), kKeepIdle, kKeepInterval, kKeepCount);
    std::lock_guard g(links().mu);
    conns_.insert_or_assign(me, c);
    t_links.used.push_back(weak_from_this());
    return c;
}

void Link::forget_thread(std::thread::id t) {
    std::shared_ptr<Connection> gone;  // closed outside the lock
    std::lock_guard g(links().mu);
    auto it = conns_.find(t);
    if (it == conns_.end()) return;
    gone = std::move(it->second);
    conns_.erase(it);
}

std::shared_ptr<Link> link_to(const connection::Address& address, const std::string& authkey) {
    const std::string key = address.str() + '\n' + authkey;
    std::lock_guard g(links().mu);
    if (auto l = links().by_key[key].lock()) return l;
    auto l = std::make_shared<Link>(address, authkey);
    links().by_key[key] = l;
    return l;
}

namespace {
std::string transact(Link& link, std::uint8_t op, std::uint64_t id, std::string_view name, const std::string& args) {
    std::string request;
    {
        OutputArchive ar(request);
        ar(op, id, std::string(name), args);
    }
    std::string reply;
    try {
        const std::shared_ptr<Connection> c = link.connection();
        try {
            c->send_bytes(request);
            reply = c->recv_bytes();
        } catch (...) {
            c->close();  // a half-done exchange leaves the stream unusable
            throw;
        }
    } catch (const AuthenticationError&) {
        throw;
    } catch (const std::exception& e) {
        throw ProcessError("mproc: the manager at " + link.address().str() + " cannot be reached (" + e.what() + ")");
    }
    InputArchive ar(reply, {});
    std::uint8_t status = 0;
    ar(status);
    if (status != 0) std::rethrow_exception(mproc::detail::load_exception(ar));
    std::string payload;
    ar(payload);
    return payload;
}
}  // namespace

namespace {
// Every live reference of this process, for a child's exit (under links().mu).
std::set<ObjectRef*>& live_refs() {
    static auto* s = new std::set<ObjectRef*>;  // never destroyed: proxies may go at static destruction
    return *s;
}

// A child gives back the references it holds as it ends (it ends with _exit: no destructors).
void release_child_references() {
    std::vector<ObjectRef*> refs;
    {
        std::lock_guard g(links().mu);
        refs.assign(live_refs().begin(), live_refs().end());
    }
    for (ObjectRef* r : refs) r->release_at_exit();
}
const bool g_child_hook = (mproc::detail::add_child_exit_hook(release_child_references), true);
}  // namespace

ObjectRef::ObjectRef(std::shared_ptr<Link> link, std::uint64_t id)
    : link_(std::move(link)), id_(id), owner_(platform::fork_generation()) {
    std::lock_guard g(links().mu);
    live_refs().insert(this);
}

ObjectRef::~ObjectRef() {
    {
        std::lock_guard g(links().mu);
        live_refs().erase(this);
    }
    if (owner_.load() != platform::fork_generation()) return;  // an inherited copy holds no reference
    try {
        transact(*link_, kDecRef, id_, {}, {});
    } catch (...) {
        // The server is gone, or going: its objects go with it.
    }
}

void ObjectRef::adopt() const {
    const unsigned now = platform::fork_generation();
    unsigned seen = owner_.load();
    if (seen != now && owner_.compare_exchange_strong(seen, now)) transact(*link_, kIncRef, id_, {}, {});
}

void ObjectRef::release_at_exit() noexcept {
    if (owner_.exchange(0) != platform::fork_generation()) return;  // 0: no process's; held none here
    try {
        transact(*link_, kDecRef, id_, {}, {});
    } catch (...) {
    }
}

std::string ObjectRef::call(std::string_view method, const std::string& args) const {
    adopt();
    return transact(*link_, kCall, id_, method, args);
}

void ObjectRef::add_reference() const {
    adopt();
    transact(*link_, kIncRef, id_, {}, {});
}

const connection::Address& ObjectRef::address() const noexcept { return link_->address(); }
const std::string& ObjectRef::authkey() const noexcept { return link_->authkey(); }

std::shared_ptr<ObjectRef> create(const std::shared_ptr<Link>& link, const std::string& key, const std::string& init) {
    const std::string reply = transact(*link, kCreate, 0, key, init);
    return std::make_shared<ObjectRef>(link, unpack<std::uint64_t>(reply));
}

std::shared_ptr<ObjectRef> lookup(const std::shared_ptr<Link>& link, const std::string& name, const std::string& key) {
    const std::string reply = transact(*link, kLookup, 0, name, pack(key));
    return std::make_shared<ObjectRef>(link, unpack<std::uint64_t>(reply));
}

// --- what the server keeps per client ---

namespace {
struct ClientState {
    int fd = -1;
    std::map<const void*, std::function<void()>> undo;  // run if the client goes
};
thread_local ClientState* t_client = nullptr;
}  // namespace

const void* current_client() noexcept { return t_client; }
bool client_gone() noexcept { return t_client && platform::peer_closed(t_client->fd); }
void on_disconnect(const void* key, std::function<void()> undo) {
    if (t_client) t_client->undo.insert_or_assign(key, std::move(undo));
}
void forget_on_disconnect(const void* key) noexcept {
    if (t_client) t_client->undo.erase(key);
}

// --- the servants of the synchronization types ---

namespace {
using Lock = std::unique_lock<std::mutex>;

// Lock and RLock, and a Condition's lock: the owner is a client (one per client thread).
class OwnedLock {
public:
    explicit OwnedLock(bool recursive) : recursive_(recursive) {}
    // With mu_ held by lk.
    bool acquire(Lock& lk, bool block, const Timeout& timeout) {
        const void* me = current_client();
        if (recursive_ && owner_ == me && depth_ > 0) {
            ++depth_;
            return true;
        }
        auto free = [&] { return depth_ == 0; };
        if (!free() && (!block || !wait_for_client(lk, cv_, deadline_after(timeout), free))) return false;
        own(me, 1);
        return true;
    }
    void release(Lock&) {
        if (depth_ == 0)
            throw std::logic_error(recursive_ ? "mproc: cannot release un-acquired lock" : "mproc: release unlocked lock");
        if (recursive_ && owner_ != current_client())
            throw std::logic_error("mproc: cannot release un-acquired lock (held by another client)");
        if (--depth_ > 0) return;
        give_back();
    }
    // acquire, release and locked, which Lock, RLock and Condition share; false for another.
    bool call(std::string_view m, Lock& lk, InputArchive& in, OutputArchive& out) {
        if (m == "acquire") {
            const bool block = take<bool>(in);
            out(acquire(lk, block, take<Timeout>(in)));
        } else if (m == "release") {
            release(lk);
        } else if (m == "locked") {
            out(locked());
        } else {
            return false;
        }
        return true;
    }
    bool owned() const { return depth_ > 0 && owner_ == current_client(); }
    bool locked() const { return depth_ > 0; }
    // For Condition::wait: give the lock up at any depth, and take it back.
    std::uint32_t release_all() {
        const std::uint32_t d = depth_;
        depth_ = 0;
        give_back();
        return d;
    }
    void restore(Lock& lk, std::uint32_t depth) {
        wait_for_client(lk, cv_, std::nullopt, [&] { return depth_ == 0; });
        own(current_client(), depth);
    }
    std::mutex mu_;

private:
    void own(const void* me, std::uint32_t depth) {
        owner_ = me;
        depth_ = depth;
        // Released if this client disconnects while holding it (Python leaves it held forever).
        on_disconnect(this, [this, me] {
            std::lock_guard g(mu_);
            if (owner_ == me && depth_ > 0) {
                depth_ = 0;
                give_back();
            }
        });
    }
    void give_back() {
        forget_on_disconnect_of(owner_);
        owner_ = nullptr;
        cv_.notify_one();
    }
    void forget_on_disconnect_of(const void* owner) {
        if (owner == current_client()) forget_on_disconnect(this);
    }
    bool recursive_;
    const void* owner_ = nullptr;
    std::uint32_t depth_ = 0;
    std::condition_variable cv_;
};

class LockServant final : public Servant {
public:
    explicit LockServant(bool recursive) : lock_(recursive) {}
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(lock_.mu_);
        if (!lock_.call(m, lk, in, out)) no_method("Lock", m);
    }

private:
    OwnedLock lock_;
};

class ConditionServant final : public Servant {
public:
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(lock_.mu_);
        if (lock_.call(m, lk, in, out)) {
            return;
        } else if (m == "wait") {
            const auto deadline = deadline_after(take<Timeout>(in));
            if (!lock_.owned()) throw std::logic_error("mproc: cannot wait on un-acquired lock");
            auto me = std::make_shared<bool>(false);  // set by notify
            waiters_.push_back(me);
            const std::uint32_t depth = lock_.release_all();
            bool notified = false;
            try {
                notified = wait_for_client(lk, cv_, deadline, [&] { return *me; });
            } catch (...) {
                std::erase(waiters_, me);
                throw;  // the client is gone: it does not take the lock back
            }
            if (!notified) std::erase(waiters_, me);
            lock_.restore(lk, depth);
            out(notified);
        } else if (m == "notify" || m == "notify_all") {
            if (!lock_.owned()) throw std::logic_error("mproc: cannot notify on un-acquired lock");
            int n = m == "notify" ? take<int>(in) : static_cast<int>(waiters_.size());
            while (n-- > 0 && !waiters_.empty()) {
                *waiters_.front() = true;
                waiters_.pop_front();
            }
            cv_.notify_all();
        } else {
            no_method("Condition", m);
        }
    }

private:
    OwnedLock lock_{true};
    std::condition_variable cv_;
    std::deque<std::shared_ptr<bool>> waiters_;  // oldest first
};

class SemaphoreServant final : public Servant {
public:
    explicit SemaphoreServant(bool bounded) : bounded_(bounded) {}
    void init(InputArchive& in) {
        in(value_);
        if (value_ < 0) throw std::invalid_argument("mproc: semaphore initial value must be >= 0");
        bound_ = value_;
    }
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(mu_);
        if (m == "acquire") {
            const bool block = take<bool>(in);
            const auto deadline = deadline_after(take<Timeout>(in));
            auto ready = [&] { return value_ > 0; };
            const bool ok = ready() || (block && wait_for_client(lk, cv_, deadline, ready));
            if (ok) --value_;
            out(ok);
        } else if (m == "release") {
            const int n = take<int>(in);
            if (n < 1) throw std::invalid_argument("mproc: n must be one or more");
            if (bounded_ && value_ + n > bound_) throw std::logic_error("mproc: semaphore or lock released too many times");
            value_ += n;
            for (int i = 0; i < n; ++i) cv_.notify_one();
        } else if (m == "get_value") {
            out(value_);
        } else {
            no_method("Semaphore", m);
        }
    }

private:
    bool bounded_;
    int value_ = 1, bound_ = 1;
    std::mutex mu_;
    std::condition_variable cv_;
};

class EventServant final : public Servant {
public:
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(mu_);
        if (m == "is_set") {
            out(flag_);
        } else if (m == "set") {
            flag_ = true;
            cv_.notify_all();
        } else if (m == "clear") {
            flag_ = false;
        } else if (m == "wait") {
            const auto deadline = deadline_after(take<Timeout>(in));
            out(wait_for_client(lk, cv_, deadline, [&] { return flag_; }));
        } else {
            no_method("Event", m);
        }
    }

private:
    bool flag_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
};

class BarrierServant final : public Servant {
public:
    void init(InputArchive& in) {
        in(parties_, timeout_);
        if (parties_ < 1) throw std::invalid_argument("mproc: a Barrier needs at least one party");
    }
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(mu_);
        if (m == "wait") {
            Timeout timeout = take<Timeout>(in);
            if (!timeout) timeout = timeout_;
            if (broken_) throw BrokenBarrierError();
            const std::uint64_t gen = generation_;
            const int index = waiting_++;
            if (waiting_ == parties_) {
                waiting_ = 0;
                ++generation_;
                cv_.notify_all();
                out(index);
                return;
            }
            bool passed = false;
            try {
                passed = wait_for_client(lk, cv_, deadline_after(timeout), [&] { return generation_ != gen || broken_; });
            } catch (...) {
                break_barrier();  // a party's client went away: the others cannot pass
                throw;
            }
            if (generation_ != gen) {
                out(index);
                return;
            }
            if (!passed) break_barrier();  // a timeout breaks the barrier, as in Python
            throw BrokenBarrierError();
        } else if (m == "reset") {
            if (waiting_ > 0) break_barrier();  // the waiters get BrokenBarrierError
            broken_ = false;
            ++generation_;
            waiting_ = 0;
        } else if (m == "abort") {
            break_barrier();
        } else if (m == "parties") {
            out(parties_);
        } else if (m == "n_waiting") {
            out(broken_ ? 0 : waiting_);
        } else if (m == "broken") {
            out(broken_);
        } else {
            no_method("Barrier", m);
        }
    }

private:
    void break_barrier() {
        broken_ = true;
        waiting_ = 0;
        cv_.notify_all();
    }
    int parties_ = 1, waiting_ = 0;
    Timeout timeout_;
    std::uint64_t generation_ = 0;
    bool broken_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
};

const bool g_sync_types_registered = [] {
    register_type("Lock", [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<LockServant>(false); });
    register_type("RLock", [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<LockServant>(true); });
    register_type("Semaphore", [](InputArchive& init) -> std::unique_ptr<Servant> {
        auto s = std::make_unique<SemaphoreServant>(false);
        s->init(init);
        return s;
    });
    register_type("BoundedSemaphore", [](InputArchive& init) -> std::unique_ptr<Servant> {
        auto s = std::make_unique<SemaphoreServant>(true);
        s->init(init);
        return s;
    });
    register_type("Condition", [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<ConditionServant>(); });
    register_type("Event", [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<EventServant>(); });
    register_type("Barrier", [](InputArchive& init) -> std::unique_ptr<Servant> {
        auto s = std::make_unique<BarrierServant>();
        s->init(init);
        return s;
    });
    return true;
}();
}  // namespace

// --- the server ---

// An object the server makes as it starts and shares by name (register_shared).
struct SharedObject {
    std::string name, key, init;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(name, key, init);
    }
};

class ServerCore : public std::enable_shared_from_this<ServerCore> {
public:
    ServerCore(const ManagerOptions& options, const std::string& authkey, const std::vector<SharedObject>& shared)
        : options_(options), authkey_(authkey), listener_(options.address, std::nullopt, 64) {
        for (const SharedObject& s : shared) {
            const Factory make = find_type(s.key);
            if (!make) throw std::invalid_argument("mproc: the manager serves no type '" + s.key + "'");
            InputArchive init(s.init, {});
            const std::uint64_t id = add(make(init));
            named_.insert_or_assign(s.name, std::make_pair(id, s.key));
        }
    }
    const connection::Address& address() const { return listener_.address(); }

    void serve_forever() {
        while (!stopping_.load()) {
            std::optional<Connection> c;
            try {
                c.emplace(listener_.accept(std::chrono::milliseconds(100)));
            } catch (const TimeoutError&) {
                continue;
            } catch (const std::exception&) {
                continue;  // a client that vanished while being accepted
            }
            if (clients_->count() >= options_.max_connections) continue;  // closed as `c` goes
            clients_->enter();
            // The thread counts itself gone only after its connection is closed and its hold on
            // the server let go, so a serve_forever that saw every client gone leaves nothing
            // of theirs open behind it (the server and its objects may go right after).
            std::thread([self = shared_from_this(), clients = clients_, conn = std::move(*c)]() mutable {
                self->serve_client(std::move(conn));
                self.reset();
                clients->leave();
            }).detach();
        }
        {
            std::lock_guard g(fds_mu_);
            listener_.close();
            // Wake every client thread blocked reading (each ends at end-of-file; a call that
            // waits inside an object sees its client gone), but let a reply being sent go out.
            for (int fd : fds_) platform::shutdown_socket(fd, true);
        }
        // Wait a little for them all, so a caller that exits next does not cut a reply short.
        clients_->wait_gone(std::chrono::seconds(5));
    }

    void stop() {
        stopping_.store(true);
        // Wakes the accept at once (on Linux, shutdown of a listening socket ends its waits).
        std::lock_guard g(fds_mu_);
        try {
            platform::shutdown_socket(listener_.fileno());
        } catch (const std::logic_error&) {
            // already closed: serve_forever has ended
        }
    }

private:
    struct Entry {
        std::mutex mu;  // one call at a time, for servants that do not synchronize themselves
        std::unique_ptr<Servant> servant;
        std::atomic<std::uint64_t> refs{1};
    };

    std::uint64_t add(std::unique_ptr<Servant> servant) {
        auto e = std::make_shared<Entry>();
        e->servant = std::move(servant);
        std::lock_guard g(mu_);
        const std::uint64_t id = next_id_++;
        objects_.emplace(id, std::move(e));
        return id;
    }

    std::shared_ptr<Entry> find(std::uint64_t id) {
        std::lock_guard g(mu_);
        auto it = objects_.find(id);
        if (it == objects_.end()) throw std::invalid_argument("mproc: the manager has no object " + std::to_string(id));
        return it->second;
    }

    // One request; false when the server is to stop.
    bool handle(std::string_view request, std::string& reply) {
        reply.clear();
        OutputArchive out(reply);
        try {
            std::uint8_t op = 0;
            std::uint64_t id = 0;
            std::string name, args;
            InputArchive in(request, {});
            in(op, id, name, args);
            std::string result;
            OutputArchive rar(result);
            switch (op) {
                case kCreate: {
                    const Factory make = find_type(name);
                    if (!make) throw std::invalid_argument("mproc: the manager serves no type '" + name + "'");
                    InputArchive init(args, {});
                    rar(add(make(init)));
                    break;
                }
                case kLookup: {
                    const auto key = unpack<std::string>(args);
                    std::lock_guard g(mu_);
                    auto it = named_.find(name);
                    if (it == named_.end()) throw std::out_of_range("mproc: the manager shares nothing named '" + name + "'");
                    if (it->second.second != key)
                        throw std::invalid_argument("mproc: the manager's '" + name + "' is a " + it->second.second +
                                                    ", not a " + key);
                    ++objects_.at(it->second.first)->refs;
                    rar(it->second.first);
                    break;
                }
                case kCall: {
                    std::shared_ptr<Entry> e = find(id);
                    InputArchive in_args(args, {});
                    if (e->servant->concurrent()) {
                        e->servant->call(name, in_args, rar);
                    } else {
                        std::lock_guard g(e->mu);
                        e->servant->call(name, in_args, rar);
                    }
                    break;
                }
                case kIncRef:
                    ++find(id)->refs;
                    break;
                case kDecRef: {
                    std::shared_ptr<Entry> gone;  // freed outside the lock: its proxies may call back here
                    {
                        std::lock_guard g(mu_);
                        auto it = objects_.find(id);
                        if (it != objects_.end() && --it->second->refs == 0) {
                            gone = std::move(it->second);
                            objects_.erase(it);
                        }
                    }
                    break;
                }
                case kCount: {
                    std::lock_guard g(mu_);
                    rar(static_cast<std::uint64_t>(objects_.size()));
                    break;
                }
                case kShutdown:
                    out(std::uint8_t{0}, result);
                    return false;
                default:
                    throw std::invalid_argument("mproc: unknown manager request " + std::to_string(op));
            }
            out(std::uint8_t{0}, result);
        } catch (const ClientGone&) {
            throw;
        } catch (...) {
            reply.clear();
            OutputArchive err(reply);
            err(std::uint8_t{1});
            mproc::detail::save_exception(err, std::current_exception());
        }
        return true;
    }

    // Serves one client until it goes (or the server stops).
    void serve_client(Connection c) {
        ClientState state;
        state.fd = c.fileno();
        t_client = &state;
        {
            std::lock_guard g(fds_mu_);
            fds_.insert(state.fd);
        }
        try {
            // Nothing the client sends is decoded before it proves it knows the authkey.
            connection::deliver_challenge(c, authkey_, kHandshakeTimeout);
            connection::answer_challenge(c, authkey_, kHandshakeTimeout);
            c.set_max_message_size(options_.max_message_size);
            c.set_read_ahead();  // this thread's alone
            platform::set_keepalive(state.fd, kKeepIdle, kKeepInterval, kKeepCount);
            std::string reply;
            while (!stopping_.load()) {
                const std::string request = c.recv_bytes();
                const bool go_on = handle(request, reply);
                c.send_bytes(reply);
                if (!go_on) stop();
            }
        } catch (const std::exception&) {
            // End of file, a failed handshake, a frame past the limit, a client gone while its
            // call waited: this client is done; the others go on.
        }
        // What the client still held (its Locks) is given back.
        auto undo = std::move(state.undo);
        t_client = nullptr;
        for (auto& [key, fn] : undo) fn();
        std::lock_guard g(fds_mu_);
        fds_.erase(state.fd);
    }

    // The client threads, counted apart from the server they serve, which may be gone before
    // the last of them is.
    class Clients {
    public:
        int count() {
            std::lock_guard g(mu_);
            return n_;
        }
        void enter() {
            std::lock_guard g(mu_);
            ++n_;
        }
        void leave() {
            {
                std::lock_guard g(mu_);
                --n_;
            }
            gone_.notify_all();
        }
        void wait_gone(std::chrono::seconds limit) {
            std::unique_lock g(mu_);
            gone_.wait_for(g, limit, [&] { return n_ == 0; });
        }

    private:
        std::mutex mu_;
        std::condition_variable gone_;
        int n_ = 0;
    };

    ManagerOptions options_;
    std::string authkey_;
    connection::Listener listener_;
    std::atomic<bool> stopping_{false};
    std::shared_ptr<Clients> clients_ = std::make_shared<Clients>();
    std::mutex mu_;
    std::unordered_map<std::uint64_t, std::shared_ptr<Entry>> objects_;
    std::map<std::string, std::pair<std::uint64_t, std::string>> named_;  // name -> (id, type key)
    std::uint64_t next_id_ = 1;
    std::mutex fds_mu_;
    std::set<int> fds_;
};

namespace {
// The server process's target: listens, tells the parent its address (or why it could not),
// serves, and exits when asked to shut down.
void manager_main(ManagerOptions options, std::string authkey, std::vector<SharedObject> shared, Connection ready) {
    std::shared_ptr<ServerCore> core;
    try {
        core = std::make_shared<ServerCore>(options, authkey, shared);
        ready.send(std::make_pair(std::string(), core->address()));
    } catch (const std::exception& e) {
        ready.send(std::make_pair(std::string(e.what()), connection::Address{}));
        platform::exit_now(1);
    }
    ready.close();
    core->serve_forever();
    // Client threads may still be inside calls: end the process without running destructors
    // under them.
    platform::exit_now(0);
}

std::string fresh_name() {
    static std::atomic<unsigned> n{0};
    std::random_device rd;
    return "mproc-manager-" + std::to_string(platform::get_pid()) + "-" + std::to_string(n++) + "-" +
           std::to_string(rd());
}
}  // namespace
}  // namespace detail

// --- Server ---

const connection::Address& Server::address() const { return core_->address(); }
void Server::serve_forever() { core_->serve_forever(); }
void Server::stop() { core_->stop(); }

// --- BaseManager ---

struct BaseManager::Impl {
    enum class Mode { Idle, Started, Connected, Serving };
    ManagerOptions options;
    std::string authkey;
    Mode mode = Mode::Idle;
    bool stopped = false;
    std::optional<Process> server;
    std::vector<detail::SharedObject> shared;
    std::shared_ptr<detail::Link> link;  // while started or connected
};

BaseManager::BaseManager(ManagerOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
    const connection::Address& a = impl_->options.address;
    const bool local = a.empty() || a.is_unix() || platform::is_loopback(a.host) || a.host == "localhost";
    if (!local && (!impl_->options.authkey || impl_->options.authkey->empty()))
        throw std::invalid_argument("mproc: a manager on " + a.str() +
                                    " (not a Unix socket or loopback) needs an explicit authkey: anyone who reaches "
                                    "the address could use it otherwise");
    if (impl_->options.max_message_size < 1024)
        throw std::invalid_argument("mproc: max_message_size below 1024 bytes leaves no room for a request");
    impl_->authkey = impl_->options.authkey ? *impl_->options.authkey : current_process().authkey();
    if (a.empty()) impl_->options.address = connection::Address::abstract(detail::fresh_name());
}

BaseManager::BaseManager(BaseManager&&) noexcept = default;
BaseManager& BaseManager::operator=(BaseManager&& o) noexcept {
    if (this != &o) {
        if (impl_) shutdown();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

BaseManager::~BaseManager() {
    if (impl_) shutdown();
}

void BaseManager::start() {
    if (impl_->mode != Impl::Mode::Idle) throw std::logic_error("mproc: the manager has already been started or connected");
    auto [r, w] = Pipe(false);
    impl_->server.emplace(ProcessOptions{.name = "SyncManager", .daemon = true, .start_method = impl_->options.start_method},
                          detail::manager_main, impl_->options, impl_->authkey, impl_->shared, std::move(w));
    impl_->server->start();
    impl_->mode = Impl::Mode::Started;
    if (!r.poll(std::chrono::seconds(30))) {
        impl_->server->kill();
        impl_->server->join();
        impl_->stopped = true;
        throw ProcessError("mproc: the manager process did not start listening within 30 s");
    }
    std::pair<std::string, connection::Address> answer;
    try {
        answer = r.recv<std::pair<std::string, connection::Address>>();
    } catch (const std::exception& e) {
        answer.first = e.what();
    }
    if (!answer.first.empty()) {
        impl_->server->join(std::chrono::seconds(5));
        impl_->stopped = true;
        throw ProcessError("mproc: the manager could not listen on " + impl_->options.address.str() + ": " + answer.first);
    }
    impl_->options.address = answer.second;
}

void BaseManager::connect() {
    if (impl_->mode != Impl::Mode::Idle) throw std::logic_error("mproc: the manager has already been started or connected");
    impl_->mode = Impl::Mode::Connected;
    (void)number_of_objects();  // a wrong address or authkey fails here
}

Server BaseManager::get_server() {
    if (impl_->mode != Impl::Mode::Idle) throw std::logic_error("mproc: the manager has already been started or connected");
    auto core = std::make_shared<detail::ServerCore>(impl_->options, impl_->authkey, impl_->shared);
    impl_->options.address = core->address();
    impl_->mode = Impl::Mode::Serving;
    return Server(std::move(core));
}

void BaseManager::shutdown() {
    if (impl_->stopped || impl_->mode == Impl::Mode::Idle) return;
    impl_->stopped = true;
    // A connected manager lets go of its connections (they close when its proxies are gone too).
    std::shared_ptr<detail::Link> link = std::move(impl_->link);
    if (impl_->mode != Impl::Mode::Started) return;
    try {
        detail::transact(*detail::link_to(impl_->options.address, impl_->authkey), detail::kShutdown, 0, {}, {});
    } catch (...) {
    }
    impl_->server->join(std::chrono::seconds(5));
    if (impl_->server->is_alive()) {
        impl_->server->kill();
        impl_->server->join();
    }
}

const connection::Address& BaseManager::address() const { return impl_->options.address; }

const std::shared_ptr<detail::Link>& BaseManager::link() const {
    if (impl_->mode == Impl::Mode::Idle || impl_->stopped) throw std::logic_error("mproc: the manager is not running");
    if (!impl_->link) impl_->link = detail::link_to(impl_->options.address, impl_->authkey);
    return impl_->link;
}

std::size_t BaseManager::number_of_objects() const {
    return static_cast<std::size_t>(detail::unpack<std::uint64_t>(detail::transact(*link(), detail::kCount, 0, {}, {})));
}

std::shared_ptr<detail::ObjectRef> BaseManager::make(const std::string& key, const std::string& init) {
    return detail::create(link(), key, init);
}

void BaseManager::register_shared_raw(const std::string& name, const std::string& key, const std::string& init) {
    if (impl_->mode != Impl::Mode::Idle)
        throw std::logic_error("mproc: register_shared must come before start() or get_server()");
    impl_->shared.push_back({name, key, init});
}

}  // namespace mproc::managers

namespace mproc {
managers::SyncManager Manager(managers::ManagerOptions options) {
    managers::SyncManager m(std::move(options));
    m.start();
    return m;
}
}  // namespace mproc
