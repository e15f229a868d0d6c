// mproc/detail/manager_servant.hpp: what a served object ("servant") is to a manager's server,
// and what the server gives the servants that block (not API): the Servant interface, the
// registry of the types a server can make, and the client of the current server thread, whose
// going away a blocked call must notice.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/manager_methods.hpp"

namespace mproc::managers::detail {
using mproc::detail::Deadline;

// A served object: a method name and typed arguments in, a typed result out.
class Servant {
public:
    virtual ~Servant() = default;
    // Unknown method: std::invalid_argument (the client gets it back as the same type).
    virtual void call(std::string_view method, InputArchive& in, OutputArchive& out) = 0;
    // True for objects that synchronize themselves and may block inside call() (queues, locks,
    // events): the server then does not hold the object's own mutex around the call.
    virtual bool concurrent() const noexcept { return false; }
};

using Factory = std::unique_ptr<Servant> (*)(InputArchive& init);
// The types a server can make, by key. Filled at static initialization by every proxy type this
// program instantiates, so a server (a fork or a fresh run of this program) knows them all.
void register_type(const std::string& key, Factory make);

template <class S>
struct Registered {
    static inline const bool done = (register_type(S::key(), [](InputArchive& init) -> std::unique_ptr<Servant> {
                                         auto s = std::make_unique<S>();
                                         s->init(init);
                                         return s;
                                     }),
                                     true);
};

// --- what servants that block need from the server ---

// The client the current server thread serves, as an opaque token (null outside a server).
const void* current_client() noexcept;
// True once the client of the current server thread has closed its connection (a blocked call
// then gives up, so that nothing is handed to a client that is gone).
bool client_gone() noexcept;
// Run `undo` if the current client disconnects before forget_on_disconnect(key): a Lock held
// by a client that died is released (Python leaves it locked forever).
void on_disconnect(const void* key, std::function<void()> undo);
void forget_on_disconnect(const void* key) noexcept;

// Thrown inside a servant when its client went away while it waited.
struct ClientGone : std::runtime_error {
    ClientGone() : std::runtime_error("mproc: the client went away") {}
};

// Waits on cv until pred(), in slices, so that a client that went away is noticed: false at
// the deadline; ClientGone when the client has gone.
template <class Pred>
bool wait_for_client(std::unique_lock<std::mutex>& lk, std::condition_variable& cv, const Deadline& deadline,
                     Pred pred) {
    constexpr auto kSlice = std::chrono::milliseconds(100);
    const auto at = deadline.at();
    while (!pred()) {
        const auto now = Deadline::Clock::now();
        if (at && now >= *at) return false;
        cv.wait_until(lk, at ? std::min(*at, now + kSlice) : now + kSlice);
        if (!pred() && client_gone()) throw ClientGone();
    }
    return true;
}

}  // namespace mproc::managers::detail
