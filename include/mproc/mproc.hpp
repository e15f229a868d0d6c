// mproc/mproc.hpp: everything (Python: import multiprocessing), and get_context().
#pragma once

#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/context.hpp"
#include "mproc/errors.hpp"
#include "mproc/futures.hpp"
#include "mproc/managers.hpp"
#include "mproc/pool.hpp"
#include "mproc/process.hpp"
#include "mproc/queues.hpp"
#include "mproc/serialize.hpp"
#include "mproc/shared_memory.hpp"
#include "mproc/sharedctypes.hpp"
#include "mproc/synchronize.hpp"
#include "mproc/threading.hpp"
#include "mproc/version.hpp"

namespace mproc {

// A start method and the factories bound to it (Python: multiprocessing.get_context(method),
// a ForkContext, SpawnContext or ForkServerContext). C++ cannot hold classes in an object, so
// Python's ctx.Process(target=f, args=(x,)) is ctx.Process(f, x), ctx.Pool(4) a Pool, and
// ctx.Queue() is ctx.Queue<int>(): each returns the ordinary mproc object.
//
// What the start method changes: Process, Pool and Manager (its server process) start their
// processes with it, whatever the default (set_start_method) is, and a child started so
// reports it from get_start_method(), as in Python. The other objects (queues, locks, shared
// values, pipes) are the same under every start method, in Python as here; they are here so
// that code written against a context reads as it does in Python.
//
// Defined here rather than in context.hpp: it needs every concept's header, and process.hpp and
// pool.hpp include context.hpp. (Python's package top level is its default context, too.)
//
// Each factory blocks and throws as the constructor it calls (a Pool starts its workers,
// Manager() its server process, and waits for it); a Context itself holds only the method's
// name, and copies of it are free.
class Context {
public:
    // Python: ctx.get_start_method().
    const std::string& get_start_method() const noexcept { return method_; }
    // Python: ctx.get_context(method=None): this context, or the one for `method`.
    Context get_context() const { return *this; }
    Context get_context(std::string_view method) const { return Context(method); }

    // A process started with this context's method. Options naming another start method:
    // std::invalid_argument (empty takes this context's).
    mproc::Process Process(ProcessOptions options = {}) const { return mproc::Process(bound(std::move(options))); }
    template <class F, class... Args>
        requires(!std::is_same_v<std::remove_cvref_t<F>, ProcessOptions>)
    mproc::Process Process(F&& target, Args&&... args) const {
        return mproc::Process(ProcessOptions{.start_method = method_}, std::forward<F>(target), std::forward<Args>(args)...);
    }
    template <class F, class... Args>
    mproc::Process Process(ProcessOptions options, F&& target, Args&&... args) const {
        return mproc::Process(bound(std::move(options)), std::forward<F>(target), std::forward<Args>(args)...);
    }
    // A pool whose workers start with this context's method (Python: ctx.Pool(processes, ...)).
    // As Process's, options naming another method: std::invalid_argument.
    mproc::Pool Pool(PoolOptions options = {}) const { return mproc::Pool(bound(std::move(options))); }
    mproc::Pool Pool(int processes) const { return Pool(PoolOptions{.processes = processes}); }
    // A started SyncManager whose server process starts with this context's method.
    managers::SyncManager Manager(managers::ManagerOptions options = {}) const {
        return mproc::Manager(bound(std::move(options)));
    }

    std::pair<Connection, Connection> Pipe(bool duplex = true) const { return mproc::Pipe(duplex); }

    template <class T>
    mproc::Queue<T> Queue(long maxsize = 0) const {
        return mproc::Queue<T>(maxsize);
    }
    template <class T>
    mproc::Queue<T> Queue(const QueueOptions& options) const {
        return mproc::Queue<T>(options);
    }
    template <class T>
    mproc::JoinableQueue<T> JoinableQueue(long maxsize = 0) const {
        return mproc::JoinableQueue<T>(maxsize);
    }
    template <class T>
    mproc::JoinableQueue<T> JoinableQueue(const QueueOptions& options) const {
        return mproc::JoinableQueue<T>(options);
    }
    template <class T>
    mproc::SimpleQueue<T> SimpleQueue() const {
        return mproc::SimpleQueue<T>();
    }

    mproc::Lock Lock() const { return mproc::Lock(); }
    mproc::RLock RLock() const { return mproc::RLock(); }
    mproc::Condition Condition() const { return mproc::Condition(); }
    mproc::Condition Condition(const mproc::Lock& lock) const { return mproc::Condition(lock); }
    mproc::Condition Condition(const mproc::RLock& lock) const { return mproc::Condition(lock); }
    mproc::Semaphore Semaphore(int value = 1) const { return mproc::Semaphore(value); }
    mproc::BoundedSemaphore BoundedSemaphore(int value = 1) const { return mproc::BoundedSemaphore(value); }
    mproc::Event Event() const { return mproc::Event(); }
    mproc::Barrier Barrier(int parties, void (*action)() = nullptr, Timeout timeout = {}) const {
        return mproc::Barrier(parties, action, timeout);
    }

    template <class T>
    mproc::Value<T> Value(const T& initial = T{}) const {
        return mproc::Value<T>(initial);
    }
    template <class T, class L>
    mproc::Value<T, L> Value(const T& initial, L lock) const {
        return mproc::Value<T, L>(initial, std::move(lock));
    }
    template <class T>
    mproc::Array<T> Array(std::size_t n) const {
        return mproc::Array<T>(n);
    }
    template <class T>
    mproc::Array<T> Array(std::initializer_list<T> init) const {
        return mproc::Array<T>(init);
    }
    template <class T>
    mproc::Array<T> Array(const std::vector<T>& init) const {
        return mproc::Array<T>(init);
    }
    template <class T, class L>
    mproc::Array<T, L> Array(std::size_t n, L lock) const {
        return mproc::Array<T, L>(n, std::move(lock));
    }
    template <class T, class L>
    mproc::Array<T, L> Array(const std::vector<T>& init, L lock) const {
        return mproc::Array<T, L>(init, std::move(lock));
    }
    template <class T>
    mproc::RawValue<T> RawValue(const T& initial = T{}) const {
        return mproc::RawValue<T>(initial);
    }
    template <class T>
    mproc::RawArray<T> RawArray(std::size_t n) const {
        return mproc::RawArray<T>(n);
    }
    template <class T>
    mproc::RawArray<T> RawArray(const std::vector<T>& init) const {
        return mproc::RawArray<T>(init);
    }

private:
    explicit Context(std::string_view method) : method_((detail::check_start_method(method), method)) {}

    // The options' start method, which may only repeat this context's.
    template <class Options>
    Options bound(Options options) const {
        if (!options.start_method.empty() && options.start_method != method_)
            throw std::invalid_argument("mproc: options name the start method '" + options.start_method +
                                        "' for a '" + method_ + "' context");
        options.start_method = method_;
        return options;
    }

    std::string method_;

    friend Context get_context(std::string_view method);
};

// The context for `method`: "fork", "spawn" or "forkserver"; anything else:
// std::invalid_argument (Python: ValueError).
inline Context get_context(std::string_view method) { return Context(method); }
// The default context (Python: get_context() with no argument): its method is the default's,
// which this fixes to "fork" if none was set, as get_start_method() does (a later
// set_start_method without force then throws, as Python's).
inline Context get_context() { return get_context(get_start_method()); }

}  // namespace mproc
