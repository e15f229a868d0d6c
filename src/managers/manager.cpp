// A manager's lifecycle: BaseManager's modes (started, connected, serving) and their ends, the
// server process that start() runs, and mproc::Manager().
#include <atomic>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "mproc/managers.hpp"
#include "mproc/process.hpp"
#include "managers/protocol.hpp"
#include "managers/server.hpp"
#include "platform/platform.hpp"

namespace mproc::managers {
namespace detail {

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
