// A manager's server: its objects and their reference counts, the requests it answers
// (protocol.hpp), one thread per client (which runs the servants' calls, and what a client that
// goes still held is given back from), and Server, its public face.
#include "managers/server.hpp"

#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>

#include "mproc/detail/exceptions.hpp"
#include "mproc/errors.hpp"
#include "platform/platform.hpp"

namespace mproc::managers::detail {

// --- the client the current server thread serves ---

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

// --- the server ---

ServerCore::ServerCore(const ManagerOptions& options, const std::string& authkey, const std::vector<SharedObject>& shared)
    : options_(options), authkey_(authkey), listener_(options.address, std::nullopt, 64) {
    for (const SharedObject& s : shared) {
        const Factory make = find_type(s.key);
        if (!make) throw std::invalid_argument("mproc: the manager serves no type '" + s.key + "'");
        InputArchive init(s.init, {});
        const std::uint64_t id = add(make(init));
        named_.insert_or_assign(s.name, std::make_pair(id, s.key));
    }
}

void ServerCore::serve_forever() {
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

void ServerCore::stop() {
    stopping_.store(true);
    // Wakes the accept at once (on Linux, shutdown of a listening socket ends its waits).
    std::lock_guard g(fds_mu_);
    try {
        platform::shutdown_socket(listener_.fileno());
    } catch (const std::logic_error&) {
        // already closed: serve_forever has ended
    }
}

std::uint64_t ServerCore::add(std::unique_ptr<Servant> servant) {
    auto e = std::make_shared<Entry>();
    e->servant = std::move(servant);
    std::lock_guard g(mu_);
    const std::uint64_t id = next_id_++;
    objects_.emplace(id, std::move(e));
    return id;
}

std::shared_ptr<ServerCore::Entry> ServerCore::find(std::uint64_t id) {
    std::lock_guard g(mu_);
    auto it = objects_.find(id);
    if (it == objects_.end()) throw std::invalid_argument("mproc: the manager has no object " + std::to_string(id));
    return it->second;
}

bool ServerCore::handle(std::string_view request, std::string& reply) {
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

void ServerCore::serve_client(Connection c) {
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

int ServerCore::Clients::count() {
    std::lock_guard g(mu_);
    return n_;
}
void ServerCore::Clients::enter() {
    std::lock_guard g(mu_);
    ++n_;
}
void ServerCore::Clients::leave() {
    {
        std::lock_guard g(mu_);
        --n_;
    }
    gone_.notify_all();
}
void ServerCore::Clients::wait_gone(std::chrono::seconds limit) {
    std::unique_lock g(mu_);
    Deadline::after(std::chrono::duration<double>(limit)).wait(gone_, g, [&] { return n_ == 0; });
}

}  // namespace mproc::managers::detail

namespace mproc::managers {

const connection::Address& Server::address() const { return core_->address(); }
void Server::serve_forever() { core_->serve_forever(); }
void Server::stop() { core_->stop(); }

}  // namespace mproc::managers
