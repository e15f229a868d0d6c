// Managers' wire protocol, shared by the client (client.cpp), the server (server.cpp) and the
// manager's lifecycle (manager.cpp); private to src/managers. What a method call carries (its
// name and packed arguments) is in mproc/detail/manager_methods.hpp, shared with the proxies.
//
// Over an authenticated Connection (Python's handshake, done by the server thread of that
// connection, so a silent client holds up nobody), one request and one reply at a time per
// connection:
//   request: u8 op, u64 object id, string name, string arguments (an archive)
//   reply:   u8 0 and the result's bytes, or u8 1 and an exception (as a pool's)
// ops: Create (name: a registered type key; arguments: its initial value) -> u64 id;
//      Lookup (name: a shared object's name; arguments: the type key expected) -> u64 id;
//      Call (name: a method); IncRef; DecRef (the last frees the object); Count (objects
//      held); Shutdown.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mproc/detail/manager_servant.hpp"

namespace mproc::managers::detail {

enum Op : std::uint8_t { kCreate = 1, kCall = 2, kIncRef = 3, kDecRef = 4, kShutdown = 5, kCount = 6, kLookup = 7 };
// What a client accepts in a reply.
constexpr std::size_t kClientMaxFrame = std::size_t{64} << 20;
// A client has this long to pass the handshake.
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
// TCP keepalive on both ends: a peer whose machine vanished is noticed within about
// kKeepIdle + kKeepInterval * kKeepCount seconds.
constexpr int kKeepIdle = 4, kKeepInterval = 1, kKeepCount = 5;

// One request and its reply over this thread's connection of `link`: the reply's payload; the
// server's error as its exception; a server that cannot be reached as mproc::ProcessError
// naming its address (mproc::AuthenticationError as itself).
class Link;
std::string transact(Link& link, std::uint8_t op, std::uint64_t id, std::string_view name, const std::string& args);

// The factory registered for a type key (registry.cpp); null when none is.
Factory find_type(const std::string& key);
// Registers the synchronization types (sync_servants.cpp); find_type does, on its first call.
void register_sync_types();

// An object the server makes as it starts and shares by name (register_shared).
struct SharedObject {
    std::string name, key, init;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(name, key, init);
    }
};

}  // namespace mproc::managers::detail
