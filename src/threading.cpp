// Threads (Python: threading): Thread on std::thread, a registry of live threads for
// enumerate() and the wait at exit, excepthook, local<T>'s per-thread slots.
#include "mproc/threading.hpp"

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <typeinfo>

#include "mproc/context.hpp"
#include "mproc/detail/exceptions.hpp"
#include "mproc/serialize.hpp"
#include "platform/io.hpp"
#include "platform/process.hpp"
#include "platform/sync.hpp"
#include "platform/thread.hpp"
#include "threading_internal.hpp"

namespace mproc::threading {

using mproc::detail::RegionRef;

Lock::Lock() : mproc::Lock(RegionRef::create_private(64)) {}
RLock::RLock() : mproc::RLock(RegionRef::create_private(64)) {}
Condition::Condition()
    : mproc::Condition(mproc::detail::LockCore(RegionRef::create_private(64), true), RegionRef::create_private(64)) {}
Condition::Condition(const mproc::Lock& lock) : mproc::Condition(lock.core(), RegionRef::create_private(64)) {}
Condition::Condition(const mproc::RLock& lock) : mproc::Condition(lock.core(), RegionRef::create_private(64)) {}
Semaphore::Semaphore(int value) : mproc::Semaphore(RegionRef::create_private(64), value) {}
BoundedSemaphore::BoundedSemaphore(int value) : mproc::BoundedSemaphore(RegionRef::create_private(64), value) {}

namespace detail {
// CPython Modules/_threadmodule.c lock_acquire_parse_args.
Timeout lock_timeout(bool block, Timeout timeout) {
    if (!timeout) return timeout;
    if (!block) throw std::invalid_argument("mproc: can't specify a timeout for a non-blocking call");
    if (*timeout == std::chrono::duration<double>(-1)) return std::nullopt;
    if (timeout->count() < 0) throw std::invalid_argument("mproc: timeout value must be positive");
    return timeout;
}

// CPython Lib/threading.py Semaphore.acquire.
void check_semaphore_arguments(bool block, const Timeout& timeout) {
    if (!block && timeout) throw std::invalid_argument("mproc: can't specify timeout for non-blocking acquire");
}
}  // namespace detail
Event::Event() : mproc::Event(RegionRef::create_private(64)) {}
Barrier::Barrier(int parties, std::function<void()> action, Timeout timeout)
    : mproc::Barrier(RegionRef::create_private(128), parties, std::move(action), timeout) {}

namespace detail {

void local_clear_thread() noexcept;

enum class Kind { Started, Main, Dummy };

// One thread. Phase and the ids are written by the thread itself before start() returns (it
// waits on `phase`), and read without a lock after; the name takes the mutex, since Python
// lets any thread rename any other.
struct ThreadState : std::enable_shared_from_this<ThreadState> {
    ThreadState(Kind k, std::string n, bool d) : kind(k), name(std::move(n)), daemon(d) {}

    const Kind kind;
    mutable std::mutex mu;
    std::string name;
    std::atomic<bool> daemon;
    // 0 created, 1 running, 2 ended: a futex word start() and join() sleep on.
    std::atomic<std::uint32_t> phase{0};
    unsigned long ident = 0;
    int native_id = 0;
    pid_t pid = 0;  // the process the thread runs in: in a fork child, the parent's threads are gone
    std::unique_ptr<ThreadTarget> target;
    Thread* self = nullptr;  // a subclass's object, whose run() the thread calls (guarded by mu)
    bool launched = false;   // start() was called (guarded by mu)

    std::uint32_t* phase_word() { return reinterpret_cast<std::uint32_t*>(&phase); }
    bool running_here() const {
        return phase.load(std::memory_order_acquire) == 1 && pid == platform::get_pid();
    }
    void set_phase(std::uint32_t p) {
        phase.store(p, std::memory_order_release);
        platform::futex_wake(phase_word(), INT_MAX);
    }
    void mark_running(pid_t tid = platform::current_tid()) {
        ident = platform::thread_ident();
        native_id = static_cast<int>(tid);
        pid = platform::get_pid();
    }
};

namespace {
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

thread_local ThreadState* t_current = nullptr;

// The live threads of this process other than the main one, as raw pointers: each is removed
// before its thread lets go of its state, so a listed state is always alive. Never destroyed,
// since daemon threads may still end after static destruction.
struct Registry {
    std::mutex mu;
    std::vector<ThreadState*> active;
    std::shared_ptr<ThreadState> main;
    int started = 0;  // for "Thread-N"
    int dummies = 0;  // for "Dummy-N"
    bool wait_at_exit = false;
    ExceptHook hook;
};

void after_fork_in_child() noexcept;

Registry& registry() {
    static Registry* r = [] {
        auto* reg = new Registry;
        reg->main = std::make_shared<ThreadState>(Kind::Main, "MainThread", false);
        reg->main->phase.store(1);
        // The registry is first touched at static initialization (below), in the main thread.
        reg->main->mark_running();
        // The child of a fork has one thread: the one that forked. Hold the lock across fork
        // so the child's copy is consistent and unlocked.
        platform::at_fork([] { registry().mu.lock(); }, [] { registry().mu.unlock(); },
                       [] {
                           after_fork_in_child();
                           registry().mu.unlock();
                       });
        return reg;
    }();
    return *r;
}

// Touch the registry at load time, in the main thread, so MainThread's ids are right.
const bool g_registry_ready = (registry(), true);

void after_fork_in_child() noexcept {
    Registry& r = registry();
    r.active.clear();  // keeps its memory: nothing is freed between fork and the child's code
    ThreadState* cur = t_current;
    // The system call, not current_tid(): its per-thread cache is reset by another atfork
    // handler, which may run after this one.
    const pid_t tid = platform::get_tid();
    if (cur && cur != r.main.get()) {
        // A started thread, or a dummy: it becomes the child's main thread, as in Python.
        cur->pid = platform::get_pid();
        cur->native_id = static_cast<int>(tid);
        r.main = cur->shared_from_this();
    } else {
        r.main->mark_running(tid);
        t_current = r.main.get();
    }
}

void add_active(ThreadState* s) {
    Registry& r = registry();
    std::lock_guard g(r.mu);
    r.active.push_back(s);
}

void remove_active(ThreadState* s) {
    Registry& r = registry();
    std::lock_guard g(r.mu);
    std::erase(r.active, s);
}

// A thread mproc did not start gets a dummy state on its first current_thread(), dropped at
// its exit.
struct DummyHolder {
    std::shared_ptr<ThreadState> state;
    ~DummyHolder() {
        if (!state) return;
        remove_active(state.get());
        state->set_phase(2);
        if (t_current == state.get()) t_current = nullptr;
    }
};
thread_local DummyHolder t_dummy;

ThreadState& register_foreign(std::string name);

ThreadState& current_state() {
    if (ThreadState* s = t_current) return *s;
    Registry& r = registry();
    if (platform::current_tid() == platform::get_pid()) {
        std::lock_guard g(r.mu);
        t_current = r.main.get();
        return *t_current;
    }
    std::string name;
    {
        std::lock_guard g(r.mu);
        name = "Dummy-" + std::to_string(++r.dummies);
    }
    return register_foreign(std::move(name));
}

// A thread mproc::threading did not start, registered under `name` until it exits.
ThreadState& register_foreign(std::string name) {
    auto s = std::make_shared<ThreadState>(Kind::Dummy, std::move(name), true);
    s->mark_running();
    s->phase.store(1);
    add_active(s.get());
    t_dummy.state = s;
    t_current = s.get();
    return *s;
}


std::string exception_type(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return mproc::detail::type_name(typeid(x));
    } catch (...) {
        return "unknown exception";
    }
}

// One write, so reports from threads that fail together do not interleave.
void write_report(const std::string& text) {
    std::fflush(stderr);
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
}

void report(ThreadState& st, std::exception_ptr e) {
    ExceptHookArgs args{exception_type(e), e, make_base_thread(st.shared_from_this())};
    try {
        excepthook(args);
    } catch (...) {
        // As Python's _make_invoke_excepthook: the hook's own exception, under its own heading.
        write_report("Exception in threading.excepthook:\n" +
                     mproc::detail::describe_exception(std::current_exception()) + "\n");
    }
}

void entry(std::shared_ptr<ThreadState> st) {
    ThreadState& s = *st;
    t_current = &s;
    s.mark_running();
    {
        std::string name;
        {
            std::lock_guard g(s.mu);
            name = s.name;
        }
        platform::set_thread_name(name);
    }
    add_active(&s);
    // The subclass object is read before start() returns: destroyed at once after, it still
    // runs (its destructor waits).
    Thread* self = nullptr;
    if (!s.target) {
        std::lock_guard g(s.mu);
        self = s.self;
    }
    s.set_phase(1);
    try {
        if (s.target) {
            // The thread owns its target; Python too drops target and arguments when it ends.
            std::unique_ptr<ThreadTarget> t = std::move(s.target);
            t->call();
        } else if (self) {
            self->run();
        }
    } catch (...) {
        report(s, std::current_exception());
    }
    // This thread's local<T> copies die before join() returns, not after, as Python's do.
    local_clear_thread();
    remove_active(&s);
    t_current = nullptr;
    s.set_phase(2);
}

std::atomic<std::uint64_t> g_local_ids{1};

// This thread's copies of every local<T> it has used, keyed by the local's id (never reused,
// so a stale entry cannot be mistaken for a new local's).
struct LocalSlot {
    std::weak_ptr<LocalShared> owner;
    std::shared_ptr<void> value;
};
thread_local std::unordered_map<std::uint64_t, LocalSlot> t_locals;
}  // namespace

void adopt_current_thread(std::string name) {
    if (t_current) return;  // known already (the main thread, or adopted before)
    register_foreign(std::move(name));
}

void wait_for_non_daemon_threads() {
    Registry& r = registry();
    ThreadState* me = t_current;
    // The main thread is done with the program: a thread that joins it returns now, instead of
    // the two waiting for each other (Python's _shutdown stops the main thread first, then
    // joins the others).
    {
        std::shared_ptr<ThreadState> main;
        {
            std::lock_guard g(r.mu);
            main = r.main;
        }
        if (main && main.get() == me) main->set_phase(2);
    }
    for (;;) {
        std::shared_ptr<ThreadState> next;
        {
            std::lock_guard g(r.mu);
            for (ThreadState* s : r.active)
                if (s != me && s->kind == Kind::Started && !s->daemon.load()) {
                    next = s->shared_from_this();
                    break;
                }
        }
        if (!next) return;
        make_base_thread(next).join();
    }
}

void local_clear_thread() noexcept { t_locals.clear(); }

void* local_find(std::uint64_t id) noexcept {
    auto it = t_locals.find(id);
    return it == t_locals.end() ? nullptr : it->second.value.get();
}

void* local_create(const std::shared_ptr<LocalShared>& shared) {
    // Free this thread's copies of locals that are gone.
    std::erase_if(t_locals, [](const auto& kv) { return kv.second.owner.expired(); });
    std::shared_ptr<void> value = shared->make();
    void* p = value.get();
    t_locals.emplace(shared->id, LocalSlot{shared, std::move(value)});
    return p;
}

std::uint64_t local_next_id() noexcept { return g_local_ids.fetch_add(1, std::memory_order_relaxed); }

}  // namespace detail

using detail::Kind;
using detail::ThreadState;

BaseThread detail::make_base_thread(std::shared_ptr<detail::ThreadState> state) { return BaseThread(std::move(state)); }

ThreadState& BaseThread::state() const {
    if (!state_) throw std::logic_error("mproc: use of a moved-from Thread");
    return *state_;
}

std::string BaseThread::name() const {
    ThreadState& s = state();
    std::lock_guard g(s.mu);
    return s.name;
}

void BaseThread::set_name(std::string name) {
    ThreadState& s = state();
    std::lock_guard g(s.mu);
    s.name = std::move(name);
}

bool BaseThread::daemon() const { return state().daemon.load(); }

void BaseThread::set_daemon(bool daemonic) {
    ThreadState& s = state();
    if (s.phase.load() != 0) throw std::logic_error("mproc: cannot set daemon status of active thread");
    s.daemon.store(daemonic);
}

std::optional<unsigned long> BaseThread::ident() const {
    const ThreadState& s = state();
    if (s.phase.load(std::memory_order_acquire) == 0) return std::nullopt;
    return s.ident;
}

std::optional<int> BaseThread::native_id() const {
    const ThreadState& s = state();
    if (s.phase.load(std::memory_order_acquire) == 0) return std::nullopt;
    return s.native_id;
}

bool BaseThread::is_alive() const { return state().running_here(); }

void BaseThread::join(Timeout timeout) const {
    ThreadState& s = state();
    if (s.phase.load(std::memory_order_acquire) == 0)
        throw std::logic_error("mproc: cannot join thread before it is started");
    if (&s == &detail::current_state()) throw std::logic_error("mproc: cannot join current thread");
    const platform::Deadline deadline = platform::Deadline::after(timeout);
    while (s.running_here())
        if (platform::futex_wait(s.phase_word(), 1, deadline) == platform::Wake::Deadline) return;
}

Thread::Thread() : Thread(ThreadOptions{}) {}

Thread::Thread(ThreadOptions options) : BaseThread(nullptr) {
    detail::Registry& r = detail::registry();
    std::string name;
    if (options.name && !options.name->empty()) {  // Python: an empty name is no name
        name = std::move(*options.name);
    } else {
        std::lock_guard g(r.mu);
        name = "Thread-" + std::to_string(++r.started);
    }
    const bool daemonic = options.daemon ? *options.daemon : detail::current_state().daemon.load();
    state_ = std::make_shared<ThreadState>(Kind::Started, std::move(name), daemonic);
}

void Thread::set_target(std::unique_ptr<detail::ThreadTarget> target) { state_->target = std::move(target); }

void Thread::adopt(Thread& other) noexcept {
    state_ = std::move(other.state_);
    if (!state_) return;
    std::lock_guard g(state_->mu);
    if (state_->self == &other) state_->self = this;
}

Thread::Thread(Thread&& other) noexcept : BaseThread(nullptr) { adopt(other); }

Thread& Thread::operator=(Thread&& other) noexcept {
    if (this != &other) {
        wait_for_own_run();
        adopt(other);
    }
    return *this;
}

// A subclass's thread runs on this object: it may not outlive it. A target thread owns its
// target and goes on alone.
void Thread::wait_for_own_run() noexcept {
    if (!state_) return;
    {
        std::lock_guard g(state_->mu);
        if (state_->self != this) return;
        state_->self = nullptr;
    }
    if (&*state_ == detail::t_current) return;  // destroyed by its own run(): nothing to wait for
    const platform::Deadline never;
    while (state_->running_here()) platform::futex_wait(state_->phase_word(), 1, never);
}

Thread::~Thread() { wait_for_own_run(); }

void Thread::run() {
    if (!state_ || !state_->target) return;
    std::unique_ptr<detail::ThreadTarget> t = std::move(state_->target);
    t->call();
}

void Thread::start() {
    ThreadState& s = state();
    // Phase 0 -> 1 is the new thread's to make; a second start() must fail at once all the same.
    {
        std::lock_guard g(s.mu);
        if (s.launched) throw std::logic_error("mproc: threads can only be started once");
        s.launched = true;
        // Without a target the thread runs this object's run(): a subclass's.
        if (!s.target) s.self = this;
    }
    detail::Registry& r = detail::registry();
    if (!s.daemon.load()) {
        std::lock_guard g(r.mu);
        if (!r.wait_at_exit) {
            r.wait_at_exit = true;
            std::atexit([] { detail::wait_for_non_daemon_threads(); });
        }
    }
    try {
        std::thread(detail::entry, state_).detach();
    } catch (...) {
        std::lock_guard g(s.mu);
        s.launched = false;
        s.self = nullptr;
        throw;
    }
    const platform::Deadline never;
    while (s.phase.load(std::memory_order_acquire) == 0) platform::futex_wait(s.phase_word(), 0, never);
}

Timer::Timer(std::chrono::duration<double> interval, std::unique_ptr<detail::ThreadTarget> function)
    : Timer(interval, std::move(function), Event()) {}

// The thread's Event is made before the Thread base (members come after bases), then shared.
Timer::Timer(std::chrono::duration<double> interval, std::unique_ptr<detail::ThreadTarget> function, Event finished)
    : Thread([finished, interval, fn = std::shared_ptr<detail::ThreadTarget>(std::move(function))]() mutable {
          if (!finished.wait(interval)) fn->call();
          finished.set();
      }),
      finished_(std::move(finished)) {}

BaseThread current_thread() { return BaseThread(detail::current_state().shared_from_this()); }

BaseThread main_thread() {
    detail::Registry& r = detail::registry();
    std::lock_guard g(r.mu);
    return BaseThread(r.main);
}

std::vector<BaseThread> enumerate() {
    detail::current_state();  // a dummy counts itself, as in Python
    detail::Registry& r = detail::registry();
    std::lock_guard g(r.mu);
    std::vector<BaseThread> out;
    out.reserve(r.active.size() + 1);
    out.push_back(BaseThread(r.main));
    for (ThreadState* s : r.active)
        if (s != r.main.get()) out.push_back(BaseThread(s->shared_from_this()));
    return out;
}

int active_count() { return static_cast<int>(enumerate().size()); }

unsigned long get_ident() noexcept { return platform::thread_ident(); }
int get_native_id() noexcept { return static_cast<int>(platform::current_tid()); }

void default_excepthook(const ExceptHookArgs& args) {
    // With no thread, Python names the calling thread by its identifier (get_ident()).
    std::string text = "Exception in thread " + (args.thread ? args.thread->name() : std::to_string(get_ident())) + ":\n";
    text += mproc::detail::describe_exception(args.exc_value) + "\n";
    detail::write_report(text);
}

void excepthook(const ExceptHookArgs& args) {
    ExceptHook hook;
    {
        detail::Registry& r = detail::registry();
        std::lock_guard g(r.mu);
        hook = r.hook;
    }
    if (hook)
        hook(args);
    else
        default_excepthook(args);
}

ExceptHook set_excepthook(ExceptHook hook) {
    detail::Registry& r = detail::registry();
    std::lock_guard g(r.mu);
    return std::exchange(r.hook, std::move(hook));
}

int suggested_thread_count(double wait_to_cpu_ratio, std::optional<int> cpus) {
    if (!std::isfinite(wait_to_cpu_ratio) || wait_to_cpu_ratio < 0)
        throw std::invalid_argument("mproc: the ratio of wait time to CPU time must be finite and >= 0");
    const int n = cpus ? *cpus : process_cpu_count();
    if (n < 1) throw std::invalid_argument("mproc: cpus must be at least 1");
    // Rounded up, less a hair so that exact products (1.5 x 2 = 3) are not pushed to the next.
    const double threads = std::ceil((1.0 + wait_to_cpu_ratio) * n - 1e-9);
    if (threads > double(1 << 20)) throw std::invalid_argument("mproc: the suggested thread count is past 2^20");
    return std::max(1, static_cast<int>(threads));
}

namespace {
// Python's `type(self).__name__`: the dynamic class's name without its namespaces, so a
// subclass of Thread (or Timer) shows as itself.
std::string class_name(const BaseThread& t) {
    const std::string full = mproc::detail::type_name(typeid(t));
    int depth = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < full.size(); ++i) {
        if (full[i] == '<' || full[i] == '(') ++depth;
        else if (full[i] == '>' || full[i] == ')') --depth;
        else if (depth == 0 && full.compare(i, 2, "::") == 0) start = ++i + 1;
    }
    return full.substr(start);
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const BaseThread& t) {
    std::string kind;
    std::string status;
    if (const auto* s = &t.state(); s->kind == Kind::Main) kind = "_MainThread";
    else if (s->kind == Kind::Dummy) kind = "_DummyThread";
    else kind = class_name(t);
    const std::uint32_t phase = t.state().phase.load();
    status = phase == 0 ? "initial" : (t.is_alive() ? "started" : "stopped");
    if (t.daemon()) status += " daemon";
    if (phase != 0) status.append(" ").append(std::to_string(*t.ident()));
    return os << "<" << kind << "(" << t.name() << ", " << status << ")>";
}

}  // namespace mproc::threading
