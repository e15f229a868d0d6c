// Listener and Client: connections by address, authenticated as Python's.
#include <atomic>
#include <chrono>

#include "mproc/connection.hpp"
#include "platform/fd.hpp"
#include "platform/io.hpp"
#include "platform/net.hpp"
#include "platform/system.hpp"

namespace mproc::connection {

namespace {
platform::SocketAddress to_platform(const Address& a) { return {a.host, a.port, a.path}; }
Address from_platform(const platform::SocketAddress& a) { return {a.host, a.port, a.path}; }

}  // namespace

Listener::Listener(Address address, std::optional<std::string> authkey, int backlog) : authkey_(std::move(authkey)) {
    if (address.empty()) {
        // Python's default: a Unix socket in a private temporary directory.
        static std::atomic<unsigned> n{0};
        temp_dir_ = platform::make_temp_dir("mproc-");
        address = Address::unix_socket(temp_dir_ + "/listener-" + std::to_string(++n));
    }
    // A listener on a public address without a key is allowed, as in Python: it only moves
    // bytes. Managers, which act on what they receive, refuse that case (issue 8).
    platform::SocketAddress bound;
    platform::UniqueFd fd = platform::listen_socket(to_platform(address), backlog, bound);
    address_ = from_platform(bound);
    if (address.is_unix()) address_.path = address.path;  // keep the name as given
    unlink_ = address_.is_unix() && address_.path[0] != '\0';
    fd_ = fd.release();
}

Listener::Listener(Listener&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), address_(std::move(o.address_)), authkey_(std::move(o.authkey_)),
      last_accepted_(std::move(o.last_accepted_)), temp_dir_(std::exchange(o.temp_dir_, {})),
      unlink_(std::exchange(o.unlink_, false)) {}

Listener& Listener::operator=(Listener&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::exchange(o.fd_, -1);
        address_ = std::move(o.address_);
        authkey_ = std::move(o.authkey_);
        last_accepted_ = std::move(o.last_accepted_);
        temp_dir_ = std::exchange(o.temp_dir_, {});
        unlink_ = std::exchange(o.unlink_, false);
    }
    return *this;
}

Listener::~Listener() { close(); }

Connection Listener::accept(Timeout timeout) {
    if (fd_ < 0) throw std::logic_error("mproc: listener is closed");
    const platform::Deadline deadline = platform::Deadline::after(timeout);
    platform::SocketAddress peer;
    std::optional<platform::UniqueFd> s = platform::accept_socket(fd_, deadline, peer);
    if (!s) throw TimeoutError("mproc: no connection arrived before the timeout");
    last_accepted_ = from_platform(peer);
    Connection c(s->release());
    if (authkey_) {
        deliver_challenge(c, *authkey_, deadline.remaining());
        answer_challenge(c, *authkey_, deadline.remaining());
    }
    return c;
}

void Listener::close() noexcept {
    if (fd_ >= 0) platform::UniqueFd closer(std::exchange(fd_, -1));
    if (unlink_) {
        platform::unlink_path(address_.path);
        unlink_ = false;
    }
    if (!temp_dir_.empty()) platform::remove_dir(std::exchange(temp_dir_, {}));
}

int Listener::fileno() const {
    if (fd_ < 0) throw std::logic_error("mproc: listener is closed");
    return fd_;
}

Connection Client(const Address& address, std::optional<std::string> authkey) {
    Connection c(platform::connect_socket(to_platform(address)).release());
    if (authkey) {
        answer_challenge(c, *authkey);
        deliver_challenge(c, *authkey);
    }
    return c;
}

}  // namespace mproc::connection
