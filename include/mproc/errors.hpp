// mproc/errors.hpp: the exception types, mirroring multiprocessing's.
//
// Python raises ProcessError and its subclasses (BufferTooShort, AuthenticationError,
// TimeoutError), queue.Empty / queue.Full / queue.ShutDown, EOFError and RemoteError; mproc has
// one C++ type for each failure mode. Misuse (start twice, use after close) is std::logic_error,
// as Python's ValueError/AssertionError for the same mistakes.
//
// The standard types the headers' contracts name, each for one kind of failure:
//   std::logic_error       misuse: the wrong state (closed, not started, started twice, a
//                          moved-from handle), the wrong caller (a lock not held by this
//                          thread), an object that cannot go where it was sent
//   std::invalid_argument  an argument no call could accept: a negative count, a NaN timeout,
//                          an unknown start method, an offset past a buffer
//   std::out_of_range      an index past the end
//   std::length_error      a message too large for where it is sent (a queue's ring; more than
//                          65535 descriptors)
//   std::system_error      the operating system refused, with its errno
// Whatever a user's type throws while it is serialized or read, or a user's callable throws,
// passes through unchanged unless a contract says otherwise.
//
// An exception thrown in another process reaches the caller as the same type with the same
// what() when the type is a standard exception, an mproc exception, or one registered with
// MPROC_REGISTER_EXCEPTION(Type); any other arrives as mproc::RemoteError, which names the
// original type.
#pragma once

#include <exception>
#include <stdexcept>
#include <typeinfo>
#include <string>
#include <utility>

namespace mproc {

// Base of the errors that multiprocessing itself reports (Python: ProcessError).
class ProcessError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// recv_bytes_into: the buffer is too small; message() holds the whole message.
class BufferTooShort : public ProcessError {
public:
    explicit BufferTooShort(std::string message)
        : ProcessError("mproc: buffer too short for a message of " + std::to_string(message.size()) +
                       " bytes"),
          message_(std::move(message)) {}
    const std::string& message() const noexcept { return message_; }

private:
    std::string message_;
};

// The authkey handshake failed (wrong key, or the peer did not speak the protocol).
class AuthenticationError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

// A blocking call ran out of time where Python raises multiprocessing.TimeoutError
// (AsyncResult::get), or a task ran past its deadline.
class TimeoutError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

// An exception of a type this process cannot rebuild, thrown in another process.
class RemoteError : public ProcessError {
public:
    RemoteError(std::string type_name, const std::string& message)
        : ProcessError(type_name + ": " + message), type_name_(std::move(type_name)),
          message_(message) {}
    // The demangled name of the original exception's type.
    const std::string& type_name() const noexcept { return type_name_; }
    // The original what().
    const std::string& original_message() const noexcept { return message_; }

private:
    std::string type_name_;
    std::string message_;
};

// A worker process died (signal, _exit, OOM kill) while it held the task.
class WorkerLostError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

// Bytes that cannot be read as the requested type: wrong type, truncated, or malformed.
// Python's counterpart is pickle.UnpicklingError.
class SerializationError : public ProcessError {
public:
    using ProcessError::ProcessError;
};

// queue.Empty / queue.Full.
class Empty : public std::runtime_error {
public:
    Empty() : std::runtime_error("mproc: queue is empty") {}
    explicit Empty(const std::string& what) : std::runtime_error(what) {}
};
class Full : public std::runtime_error {
public:
    Full() : std::runtime_error("mproc: queue is full") {}
    explicit Full(const std::string& what) : std::runtime_error(what) {}
};

// A queue that was shut down (Python 3.13: queue.ShutDown): put() after shutdown(), get() once
// it is empty (at once after shutdown(true)).
class ShutDown : public std::runtime_error {
public:
    ShutDown() : std::runtime_error("mproc: the queue is shut down") {}
    explicit ShutDown(const std::string& what) : std::runtime_error(what) {}
};

// The other end of a connection is closed (Python: EOFError).
class EOFError : public std::runtime_error {
public:
    EOFError() : std::runtime_error("mproc: the other end is closed") {}
    explicit EOFError(const std::string& what) : std::runtime_error(what) {}
};

// threading.BrokenBarrierError.
class BrokenBarrierError : public std::runtime_error {
public:
    BrokenBarrierError() : std::runtime_error("mproc: the barrier is broken") {}
    explicit BrokenBarrierError(const std::string& what) : std::runtime_error(what) {}
};

namespace futures {
// concurrent.futures: an executor (or pool) that cannot run tasks any more, because a worker
// could not be set up (its initializer failed) or, in Python's all-or-nothing mode, a worker
// died. Python: BrokenExecutor(RuntimeError) and its subclasses.
class BrokenExecutor : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
class BrokenProcessPool : public BrokenExecutor {
public:
    using BrokenExecutor::BrokenExecutor;
};
class BrokenThreadPool : public BrokenExecutor {
public:
    using BrokenExecutor::BrokenExecutor;
};
// The future was cancelled (Python: concurrent.futures.CancelledError).
class CancelledError : public std::runtime_error {
public:
    CancelledError() : std::runtime_error("mproc: the future was cancelled") {}
    explicit CancelledError(const std::string& what) : std::runtime_error(what) {}
};
// An operation not allowed in the future's current state (Python: InvalidStateError).
class InvalidStateError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};
}  // namespace futures

namespace detail {
using ExceptionFactory = std::exception_ptr (*)(const std::string& what);
// Records that exceptions whose dynamic type has this mangled name can be rebuilt from what().
bool register_exception_type(const char* mangled_name, ExceptionFactory make);

template <class E>
std::exception_ptr make_exception_from_what(const std::string& what) {
    return std::make_exception_ptr(E(what));
}
}  // namespace detail
}  // namespace mproc

// Lets exceptions of Type cross processes as Type. Type must be constructible from a
// std::string (its what()). Write it once, at namespace scope, in a .cpp of the program.
#define MPROC_REGISTER_EXCEPTION(Type)                                                    \
    [[maybe_unused]] static const bool MPROC_REGISTER_EXCEPTION_CAT(mproc_exc_reg_, __LINE__) = \
        ::mproc::detail::register_exception_type(typeid(Type).name(),                    \
                                                 &::mproc::detail::make_exception_from_what<Type>)
#define MPROC_REGISTER_EXCEPTION_CAT2(a, b) a##b
#define MPROC_REGISTER_EXCEPTION_CAT(a, b) MPROC_REGISTER_EXCEPTION_CAT2(a, b)
