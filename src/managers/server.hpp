// A manager's server (private to src/managers): the objects it holds, by id and by shared name;
// its listener; one thread per client, each serving that client's requests one at a time. Made
// by BaseManager::get_server (served by the caller) and in the server process that
// BaseManager::start runs (manager.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/managers.hpp"
#include "managers/protocol.hpp"

namespace mproc::managers::detail {

class ServerCore : public std::enable_shared_from_this<ServerCore> {
public:
    // Listens on options.address and makes the shared objects. A shared object of a type this
    // program does not serve: std::invalid_argument; the listener's errors as they are.
    ServerCore(const ManagerOptions& options, const std::string& authkey, const std::vector<SharedObject>& shared);
    const connection::Address& address() const { return listener_.address(); }
    // Accepts and serves until stop(); then waits up to 5 s for the client threads to end.
    void serve_forever();
    // Ends serve_forever from any thread; never waits.
    void stop();

private:
    struct Entry {
        std::mutex mu;  // one call at a time, for servants that do not synchronize themselves
        std::unique_ptr<Servant> servant;
        std::atomic<std::uint64_t> refs{1};
    };

    // The client threads, counted apart from the server they serve, which may be gone before
    // the last of them is.
    class Clients {
    public:
        int count();
        void enter();
        void leave();
        void wait_gone(std::chrono::seconds limit);

    private:
        std::mutex mu_;
        std::condition_variable gone_;
        int n_ = 0;
    };

    std::uint64_t add(std::unique_ptr<Servant> servant);
    std::shared_ptr<Entry> find(std::uint64_t id);
    // One request; false when the server is to stop.
    bool handle(std::string_view request, std::string& reply);
    // Serves one client until it goes (or the server stops).
    void serve_client(Connection c);

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

}  // namespace mproc::managers::detail
