// src/platform/io.hpp: waiting and moving bytes (section "io" of the platform layer; Linux:
// linux/io.cpp).
//
// Every blocking wait takes a Deadline and resumes after EINTR with the time that remains; a
// write to a peer that is gone is std::system_error(EPIPE), never SIGPIPE.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "mproc/detail/deadline.hpp"
#include "platform/fd.hpp"

namespace mproc::platform {

// The one deadline type (mproc/detail/deadline.hpp): built once per blocking call; every wait
// inside that call asks it for the time that remains, so retries never extend the timeout.
using Deadline = mproc::detail::Deadline;

// Waits until fd is readable (or has hung up) or the deadline passes. True when readable.
bool wait_readable(int fd, const Deadline& deadline);
// Waits for any of fds to become readable (a negative one is skipped, as poll(2) does); returns
// the indices of the ready ones (empty on timeout).
std::vector<std::size_t> wait_any_readable(std::span<const int> fds, const Deadline& deadline);

// Reads up to size bytes (at least one, unless end of file: 0). EINTR is retried.
std::size_t read_some(int fd, void* data, std::size_t size, std::vector<UniqueFd>* fds = nullptr);
// Writes every byte of the pieces, the descriptors attached to the first byte (sockets only).
// A closed peer is std::system_error(EPIPE), never SIGPIPE, for sockets and pipes alike.
void write_all(int fd, bool socket, std::span<const std::string_view> pieces, std::span<const int> fds = {});

// An eventfd (close-on-exec, non-blocking): a wake-up word a poll loop can wait on beside its
// descriptors. notify adds one; drain resets it to zero.
UniqueFd make_event();
void event_notify(int fd) noexcept;
void event_drain(int fd) noexcept;

}  // namespace mproc::platform
