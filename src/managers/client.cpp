// The client side of a manager: this process's connections to each server (one per thread,
// dropped in a fork child and when their thread ends), the request/reply exchange over them, and
// this process's references to served objects, taken and given back across fork and exit.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mproc/detail/exceptions.hpp"
#include "mproc/detail/manager_client.hpp"
#include "mproc/errors.hpp"
#include "managers/protocol.hpp"
#include "platform/platform.hpp"
#include "exit_hooks.hpp"

namespace mproc::managers::detail {

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

}  // namespace mproc::managers::detail
