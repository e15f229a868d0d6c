// Managers (started; issue 8): a server process holding typed objects, and the client side of
// its protocol.
//
// Protocol, over an authenticated Connection (Python's handshake), one request and one reply
// at a time per connection:
//   request: u8 op, u64 object id, string name, string arguments (an archive)
//   reply:   u8 0 and the result's bytes, or u8 1 and an exception (as a pool's)
// ops: Create (name: a registered type key; arguments: its initial value) -> u64 id;
//      Call (name: a method); IncRef; DecRef (the last frees the object); Count (objects
//      held); Shutdown.
#include "mproc/managers.hpp"

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "mproc/detail/exceptions.hpp"
#include "platform/platform.hpp"

namespace mproc::managers {
namespace detail {

namespace {
enum Op : std::uint8_t { kCreate = 1, kCall = 2, kIncRef = 3, kDecRef = 4, kShutdown = 5, kCount = 6 };
// A request or reply larger than this is refused (the connection is closed).
constexpr std::size_t kMaxFrame = 64 * 1024 * 1024;

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

// --- the client side ---

// One connection per thread per server: a request and its reply are not interleaved with
// another thread's. Kept in one table, so that a manager's shutdown closes them all; a forked
// child starts without its parent's (they are the parent's streams).
struct Channels {
    std::mutex mu;
    pid_t pid = 0;
    std::map<std::pair<std::string, std::thread::id>, std::shared_ptr<Connection>> conns;

    void forget_if_forked() {
        if (pid == platform::get_pid()) return;
        conns.clear();
        pid = platform::get_pid();
    }
};
Channels& channels() {
    // Never destroyed: client threads may still run at static destruction. Its lock is held
    // across fork, so a child never inherits it held by a thread it does not have.
    static Channels* c = [] {
        auto* ch = new Channels;
        pthread_atfork([] { channels().mu.lock(); }, [] { channels().mu.unlock(); }, [] { channels().mu.unlock(); });
        return ch;
    }();
    return *c;
}

std::shared_ptr<Connection> channel(const connection::Address& address, const std::string& authkey) {
    Channels& ch = channels();
    const auto key = std::make_pair(address.str(), std::this_thread::get_id());
    {
        std::lock_guard g(ch.mu);
        ch.forget_if_forked();
        auto it = ch.conns.find(key);
        if (it != ch.conns.end() && !it->second->closed()) return it->second;
    }
    auto c = std::make_shared<Connection>(connection::Client(address, authkey));
    c->set_max_message_size(kMaxFrame);
    std::lock_guard g(ch.mu);
    ch.conns.insert_or_assign(key, c);
    return c;
}

void close_channels(const connection::Address& address) {
    Channels& ch = channels();
    std::lock_guard g(ch.mu);
    ch.forget_if_forked();
    const std::string a = address.str();
    std::erase_if(ch.conns, [&](const auto& kv) { return kv.first.first == a; });
}

std::string transact(const connection::Address& address, const std::string& authkey, std::uint8_t op,
                     std::uint64_t id, std::string_view name, const std::string& args) {
    std::string request;
    {
        OutputArchive ar(request);
        ar(op, id, std::string(name), args);
    }
    std::string reply;
    try {
        const std::shared_ptr<Connection> c = channel(address, authkey);
        try {
            c->send_bytes(request);
            reply = c->recv_bytes();
        } catch (...) {
            c->close();  // a half-done exchange leaves the stream unusable
            throw;
        }
    } catch (const std::exception& e) {
        throw ProcessError("mproc: the manager at " + address.str() + " cannot be reached (" + e.what() + ")");
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

ObjectRef::~ObjectRef() {
    try {
        transact(address_, authkey_, kDecRef, id_, {}, {});
    } catch (...) {
        // The server is gone, or going: its objects go with it.
    }
}

std::string ObjectRef::call(std::string_view method, const std::string& args) const {
    return transact(address_, authkey_, kCall, id_, method, args);
}

void ObjectRef::add_reference() const { transact(address_, authkey_, kIncRef, id_, {}, {}); }

std::shared_ptr<ObjectRef> create(const connection::Address& address, const std::string& authkey,
                                  const std::string& key, const std::string& init) {
    const std::string reply = transact(address, authkey, kCreate, 0, key, init);
    return std::make_shared<ObjectRef>(address, authkey, unpack<std::uint64_t>(reply));
}

// --- the server ---

namespace {
class Server {
public:
    // One request; false when the server is to stop.
    bool handle(std::string_view request, std::string& reply) {
        reply.clear();
        OutputArchive out(reply);
        std::uint8_t op = 0;
        std::uint64_t id = 0;
        std::string name, args;
        try {
            InputArchive in(request, {});
            in(op, id, name, args);
            std::string result;
            OutputArchive rar(result);
            switch (op) {
                case kCreate: {
                    const Factory make = find_type(name);
                    if (!make) throw std::invalid_argument("mproc: the manager serves no type '" + name + "'");
                    InputArchive init(args, {});
                    auto obj = std::make_shared<Entry>();
                    obj->servant = make(init);
                    std::lock_guard g(mu_);
                    const std::uint64_t new_id = next_id_++;
                    objects_.emplace(new_id, std::move(obj));
                    rar(new_id);
                    break;
                }
                case kCall: {
                    std::shared_ptr<Entry> e = find(id);
                    InputArchive in_args(args, {});
                    std::lock_guard g(e->mu);
                    e->servant->call(name, in_args, rar);
                    break;
                }
                case kIncRef:
                    ++find(id)->refs;
                    break;
                case kDecRef: {
                    std::lock_guard g(mu_);
                    auto it = objects_.find(id);
                    if (it != objects_.end() && --it->second->refs == 0) objects_.erase(it);
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
                    throw std::invalid_argument("mproc: unknown manager request");
            }
            out(std::uint8_t{0}, result);
        } catch (...) {
            reply.clear();
            OutputArchive err(reply);
            err(std::uint8_t{1});
            mproc::detail::save_exception(err, std::current_exception());
        }
        return true;
    }

private:
    struct Entry {
        std::mutex mu;  // one call at a time per object
        std::unique_ptr<Servant> servant;
        std::atomic<std::uint64_t> refs{1};
    };
    std::shared_ptr<Entry> find(std::uint64_t id) {
        std::lock_guard g(mu_);
        auto it = objects_.find(id);
        if (it == objects_.end()) throw std::invalid_argument("mproc: the manager has no object " + std::to_string(id));
        return it->second;
    }

    std::mutex mu_;
    std::unordered_map<std::uint64_t, std::shared_ptr<Entry>> objects_;
    std::uint64_t next_id_ = 1;
};

// Serves one client until it goes; the whole process ends on a Shutdown request.
void serve_client(Server& server, Connection c) {
    std::string reply;
    try {
        for (;;) {
            const std::string request = c.recv_bytes();
            const bool go_on = server.handle(request, reply);
            c.send_bytes(reply);
            if (!go_on) platform::exit_now(0);
        }
    } catch (const std::exception&) {
        // End of file, or a frame past the limit: this client is done; the others go on.
    }
}

// The server process's target.
void manager_main(connection::Address address, std::string authkey, Connection ready) {
    connection::Listener listener(address, authkey, 16);
    ready.send(std::string("ready"));
    ready.close();
    static Server server;  // lives while client threads run
    for (;;) {
        try {
            Connection c = listener.accept(std::chrono::seconds(5));
            c.set_max_message_size(kMaxFrame);
            std::thread(serve_client, std::ref(server), std::move(c)).detach();
        } catch (const TimeoutError&) {
        } catch (const AuthenticationError&) {
        } catch (const std::exception& e) {
            (void)e;  // a client that failed its handshake or vanished: serve the next
        }
    }
}

std::string fresh_name() {
    static std::atomic<unsigned> n{0};
    std::random_device rd;
    return "mproc-manager-" + std::to_string(platform::get_pid()) + "-" + std::to_string(n++) + "-" +
           std::to_string(rd());
}
}  // namespace
}  // namespace detail

struct SyncManager::Impl {
    ManagerOptions options;
    std::string authkey;
    std::optional<Process> server;
    bool started = false, stopped = false;
};

SyncManager::SyncManager(ManagerOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
    impl_->authkey = impl_->options.authkey ? *impl_->options.authkey : current_process().authkey();
    if (impl_->options.address.empty()) impl_->options.address = connection::Address::abstract(detail::fresh_name());
}

SyncManager::SyncManager(SyncManager&&) noexcept = default;
SyncManager& SyncManager::operator=(SyncManager&& o) noexcept {
    if (this != &o) {
        if (impl_) shutdown();
        impl_ = std::move(o.impl_);
    }
    return *this;
}

SyncManager::~SyncManager() {
    if (impl_) shutdown();
}

void SyncManager::start() {
    if (impl_->started) throw std::logic_error("mproc: the manager has already been started");
    auto [r, w] = Pipe(false);
    impl_->server.emplace(ProcessOptions{.name = "SyncManager", .daemon = true, .start_method = impl_->options.start_method},
                          detail::manager_main, impl_->options.address, impl_->authkey, std::move(w));
    impl_->server->start();
    impl_->started = true;
    if (!r.poll(std::chrono::seconds(30)))
        throw ProcessError("mproc: the manager process did not start listening within 30 s");
    (void)r.recv<std::string>();
}

void SyncManager::shutdown() {
    if (!impl_->started || impl_->stopped) return;
    impl_->stopped = true;
    try {
        detail::transact(impl_->options.address, impl_->authkey, detail::kShutdown, 0, {}, {});
    } catch (...) {
    }
    detail::close_channels(impl_->options.address);
    impl_->server->join(std::chrono::seconds(5));
    if (impl_->server->is_alive()) {
        impl_->server->kill();
        impl_->server->join();
    }
}

const connection::Address& SyncManager::address() const { return impl_->options.address; }

std::size_t SyncManager::number_of_objects() const {
    if (!impl_->started || impl_->stopped) throw std::logic_error("mproc: the manager is not running");
    return static_cast<std::size_t>(detail::unpack<std::uint64_t>(
        detail::transact(impl_->options.address, impl_->authkey, detail::kCount, 0, {}, {})));
}

std::shared_ptr<detail::ObjectRef> SyncManager::make(const std::string& key, const std::string& init) {
    if (!impl_->started || impl_->stopped) throw std::logic_error("mproc: the manager is not running");
    return detail::create(impl_->options.address, impl_->authkey, key, init);
}

}  // namespace mproc::managers

namespace mproc {
managers::SyncManager Manager(managers::ManagerOptions options) {
    managers::SyncManager m(std::move(options));
    m.start();
    return m;
}
}  // namespace mproc
