// Process, its handles, and the registry of children.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <ostream>
#include <cstdlib>
#include <stdexcept>
#include <typeinfo>

#include "exit_hooks.hpp"
#include "forkserver.hpp"
#include "job.hpp"
#include "launch.hpp"
#include "mproc/context.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/process.hpp"
#include "platform/io.hpp"
#include "platform/signal.hpp"
#include "platform/system.hpp"
#include "platform/thread.hpp"
#include "popen.hpp"
#include "process_registry.hpp"
#include "shm_tracker.hpp"

namespace mproc {
namespace detail {

std::mutex& fork_mutex() {
    static std::mutex m;
    return m;
}

namespace {
struct Registry {
    std::vector<std::shared_ptr<ProcessState>> children;
    std::atomic<unsigned> counter{0};  // names Process-1, Process-2, ...
    std::shared_ptr<ProcessState> current;
    std::shared_ptr<ProcessState> parent;  // empty in the main process
};

Registry& registry() {
    static Registry* r = [] {
        auto* reg = new Registry;  // never destroyed: used by the exit function and by children
        auto s = std::make_shared<ProcessState>();
        s->kind = ProcessKind::Current;
        s->name = "MainProcess";
        s->authkey.resize(32);
        platform::random_bytes(s->authkey.data(), s->authkey.size());
        reg->current = std::move(s);
        return reg;
    }();
    return *r;
}


std::string join_identity(const std::vector<unsigned>& id) {
    std::string s;
    for (std::size_t i = 0; i < id.size(); ++i) s.append(i ? ":" : "").append(std::to_string(id[i]));
    return s;
}

bool is_known_method(const std::string& m) {
    return m == "fork" || m == "spawn" || m == "forkserver";
}
}  // namespace

void register_child(std::shared_ptr<ProcessState> s) {
    std::lock_guard lk(fork_mutex());
    registry().children.push_back(std::move(s));
}

void cleanup_finished_children() {
    std::vector<std::shared_ptr<ProcessState>> kids;
    {
        std::lock_guard lk(fork_mutex());
        kids = registry().children;
    }
    std::vector<ProcessState*> done;
    for (auto& k : kids) {
        std::lock_guard lk(k->mu);
        if (!k->popen || k->popen->poll()) done.push_back(k.get());
    }
    std::lock_guard lk(fork_mutex());
    auto& v = registry().children;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const auto& k) {
                               return std::find(done.begin(), done.end(), k.get()) != done.end();
                           }),
            v.end());
}

void forget_children_after_fork() {
    Registry& r = registry();
    // Only this thread exists now. The siblings' pidfds are the parent's business: close ours.
    for (auto& k : r.children) k->popen.reset();
    r.children.clear();
    r.counter = 0;
}

std::shared_ptr<ProcessState> current_state() {
    std::lock_guard lk(fork_mutex());
    return registry().current;
}

ChildConfig make_child_config(const ProcessState& child) {
    ChildConfig c;
    c.name = child.name;
    c.identity = child.identity;
    c.daemon = child.daemon;
    c.authkey = child.authkey;
    c.start_method = child.start_method;
    c.context_method = child.method_given ? child.start_method : get_start_method(true).value_or("");
    c.parent_pid = platform::get_pid();
    c.parent_name = current_state()->name;
    c.death_signal_parent = platform::is_main_thread() ? platform::get_pid() : -1;
    c.has_tracker = tracker_fd() >= 0;
    return c;
}

namespace {
struct ExitHooks {
    std::array<void (*)(), 8> hooks{};
    std::atomic<int> count{0};
};
ExitHooks& exit_hooks() {
    static ExitHooks h;
    return h;
}
ExitHooks& child_exit_hooks() {
    static ExitHooks h;
    return h;
}
void add_hook(ExitHooks& h, void (*hook)()) noexcept {
    const int i = h.count.fetch_add(1);
    if (i < static_cast<int>(h.hooks.size())) h.hooks[static_cast<std::size_t>(i)] = hook;
}
void run_hooks(ExitHooks& h) noexcept {
    const int n = std::min<int>(h.count.load(), static_cast<int>(h.hooks.size()));
    for (int i = 0; i < n; ++i)
        if (h.hooks[static_cast<std::size_t>(i)]) h.hooks[static_cast<std::size_t>(i)]();
}
}  // namespace

void add_exit_hook(void (*hook)()) noexcept { add_hook(exit_hooks(), hook); }
void add_child_exit_hook(void (*hook)()) noexcept { add_hook(child_exit_hooks(), hook); }
void run_child_exit_hooks() noexcept { run_hooks(child_exit_hooks()); }

void exit_function() noexcept {
    run_hooks(exit_hooks());
    try {
        std::vector<std::shared_ptr<ProcessState>> kids;
        {
            std::lock_guard lk(fork_mutex());
            kids = registry().children;
        }
        for (auto& k : kids) {
            std::lock_guard lk(k->mu);
            if (k->daemon && k->popen) k->popen->send_signal(platform::kSigTerm);
        }
        for (auto& k : kids) {
            int sentinel = -1;
            {
                std::lock_guard lk(k->mu);
                if (!k->popen || k->popen->poll()) continue;
                sentinel = k->popen->sentinel();
            }
            platform::wait_readable(sentinel, platform::Deadline::never());
            std::lock_guard lk(k->mu);
            k->popen->wait_ended();
        }
        {
            std::lock_guard lk(fork_mutex());
            registry().children.clear();
        }
        stop_forkserver();
    } catch (...) {
        // At exit there is no one to report to; the kernel reaps what is left.
    }
}

void install_exit_function() {
    static std::once_flag once;
    std::call_once(once, [] { std::atexit([] { exit_function(); }); });
}

void set_current_from_config(const ChildConfig& cfg, int parent_pidfd) {
    // As Python's _bootstrap: a child of a context's Process (get_context(m).Process) reports m,
    // fork children too (the setting is an atomic: no lock a parent thread could have held).
    if (!cfg.context_method.empty()) set_start_method(cfg.context_method, true);
    auto cur = std::make_shared<ProcessState>();
    cur->kind = ProcessKind::Current;
    cur->name = cfg.name;
    cur->identity = cfg.identity;
    cur->daemon = cfg.daemon;
    cur->authkey = cfg.authkey;
    cur->start_method = cfg.start_method;
    auto par = std::make_shared<ProcessState>();
    par->kind = ProcessKind::Parent;
    par->name = cfg.parent_name;
    par->pid = cfg.parent_pid;
    par->authkey = cfg.authkey;
    if (parent_pidfd >= 0) par->parent_sentinel = platform::UniqueFd(parent_pidfd);
    Registry& r = registry();
    r.current = std::move(cur);
    r.parent = std::move(par);
    r.counter = 0;
}

}  // namespace detail

using detail::ProcessKind;
using detail::ProcessState;

detail::ProcessState& BaseProcess::state() const {
    if (!state_) throw std::logic_error("mproc: use of a moved-from process object");
    return *state_;
}

namespace {
void check_open(const ProcessState& s) {
    if (s.closed) throw std::logic_error("mproc: process object is closed");
}
}  // namespace

std::string BaseProcess::name() const {
    auto& s = state();
    std::lock_guard lk(s.mu);
    return s.name;
}

void BaseProcess::set_name(std::string name) {
    auto& s = state();
    std::lock_guard lk(s.mu);
    s.name = std::move(name);
}

bool BaseProcess::daemon() const {
    auto& s = state();
    std::lock_guard lk(s.mu);
    return s.daemon;
}

void BaseProcess::set_daemon(bool daemonic) {
    auto& s = state();
    std::lock_guard lk(s.mu);
    if (s.popen || s.kind != ProcessKind::Child)
        throw std::logic_error("mproc: process has already started; set daemon before start()");
    s.daemon = daemonic;
}

std::optional<int> BaseProcess::pid() const {
    auto& s = state();
    std::lock_guard lk(s.mu);
    check_open(s);
    if (s.kind == ProcessKind::Current) return platform::get_pid();
    if (s.kind == ProcessKind::Parent) return s.pid;
    if (!s.popen) return std::nullopt;
    return s.popen->pid();
}

std::optional<int> BaseProcess::exitcode() const {
    auto& s = state();
    std::lock_guard lk(s.mu);
    check_open(s);
    if (!s.popen) return std::nullopt;
    return s.popen->poll();
}

bool BaseProcess::is_alive() const {
    auto& s = state();
    std::unique_lock lk(s.mu);
    check_open(s);
    if (s.kind == ProcessKind::Current) return true;
    if (s.kind == ProcessKind::Parent)
        return !platform::wait_readable(s.parent_sentinel.get(), platform::Deadline::after(Timeout(0.0)));
    if (!s.popen) return false;
    if (s.creator_pid != platform::get_pid())
        throw std::logic_error("mproc: can only test a child process");
    return !s.popen->poll();
}

void BaseProcess::join(Timeout timeout) {
    auto& s = state();
    int sentinel = -1;
    {
        std::lock_guard lk(s.mu);
        check_open(s);
        if (s.kind == ProcessKind::Current) throw std::logic_error("mproc: can only join a child process");
        if (s.kind == ProcessKind::Parent) {
            sentinel = s.parent_sentinel.get();
        } else {
            if (s.creator_pid != platform::get_pid())
                throw std::logic_error("mproc: can only join a child process");
            if (!s.popen) throw std::logic_error("mproc: can only join a started process");
            if (s.popen->poll()) return;
            sentinel = s.popen->sentinel();
        }
    }
    // Waiting happens without the lock, so other threads can query the process meanwhile.
    const bool ended = platform::wait_readable(sentinel, platform::Deadline::after(timeout));
    if (!ended || s.kind == ProcessKind::Parent) return;
    std::lock_guard lk(s.mu);
    if (s.popen) s.popen->wait_ended();
}

namespace {
void signal_child(ProcessState& s, int sig) {
    std::lock_guard lk(s.mu);
    check_open(s);
    if (s.kind != ProcessKind::Child) throw std::logic_error("mproc: can only signal a child process");
    if (!s.popen) throw std::logic_error("mproc: process has not been started");
    s.popen->send_signal(sig);
}
}  // namespace

void BaseProcess::terminate() { signal_child(state(), platform::kSigTerm); }
void BaseProcess::kill() { signal_child(state(), platform::kSigKill); }

int BaseProcess::sentinel() const {
    auto& s = state();
    std::lock_guard lk(s.mu);
    check_open(s);
    if (s.kind == ProcessKind::Parent) return s.parent_sentinel.get();
    if (!s.popen) throw std::logic_error("mproc: process not started");
    return s.popen->sentinel();
}

std::string BaseProcess::authkey() const {
    auto& s = state();
    std::lock_guard lk(s.mu);
    return s.authkey;
}

void BaseProcess::set_authkey(std::string key) {
    auto& s = state();
    std::lock_guard lk(s.mu);
    s.authkey = std::move(key);
}

Process::Process() : Process(ProcessOptions{}) {}

Process::Process(ProcessOptions options) : BaseProcess(std::make_shared<ProcessState>()) {
    auto parent = detail::current_state();
    auto& s = *state_;
    s.kind = ProcessKind::Child;
    s.creator_pid = platform::get_pid();
    std::lock_guard lk(parent->mu);
    s.identity = parent->identity;
    s.identity.push_back(++detail::registry().counter);
    s.name = options.name ? *options.name : "Process-" + detail::join_identity(s.identity);
    s.daemon = options.daemon ? *options.daemon : parent->daemon;
    s.authkey = parent->authkey;
    s.start_method = std::move(options.start_method);
}

Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;

Process::~Process() {
    // A child that still runs stays registered and is joined at exit; one that has ended is
    // reaped now rather than left a zombie.
    if (!state_) return;
    try {
        std::unique_lock lk(state_->mu);
        const bool reap = state_->popen && state_->creator_pid == platform::get_pid() &&
                          state_->popen->poll().has_value();
        lk.unlock();
        if (reap) detail::cleanup_finished_children();
    } catch (...) {
    }
}

void Process::run() {
    if (target_) target_->call();
}

namespace detail {
Process make_pool_process(ProcessOptions options, std::unique_ptr<Target> target,
                          std::shared_ptr<ForkServer> server) {
    Process p(std::move(options));
    p.target_ = std::move(target);
    p.state().server = std::move(server);
    return p;
}
}  // namespace detail

void Process::start() {
    auto& s = state();
    std::string method;
    {
        std::lock_guard lk(s.mu);
        check_open(s);
        if (s.popen) throw std::logic_error("mproc: cannot start a process twice");
        if (s.creator_pid != platform::get_pid())
            throw std::logic_error("mproc: can only start a process object created by the current process");
        s.method_given = !s.start_method.empty();
        method = s.method_given ? s.start_method : get_start_method();
        if (!detail::is_known_method(method))
            throw std::invalid_argument("mproc: unknown start method '" + method +
                                        "' (choose fork, spawn or forkserver)");
        s.start_method = method;
    }
    detail::cleanup_finished_children();
    detail::install_exit_function();

    std::unique_ptr<detail::Popen> popen;
    const detail::ChildConfig cfg = detail::make_child_config(s);
    std::shared_ptr<detail::ForkServer> server;
    {
        std::lock_guard lk(s.mu);
        server = s.server;
    }
    if (method == "fork" && !server) {
        popen = detail::start_fork(cfg, [this] { run(); });
    } else {
        if (!server && !initialized())
            throw std::logic_error(
                "mproc: the '" + method +
                "' start method runs this program again as the child, and the child needs "
                "mproc::init(argc, argv) to know its job: call it as the first line of main()");
        if (typeid(*this) != typeid(Process))
            throw std::logic_error(
                "mproc: a Process subclass (here " + detail::type_name(typeid(*this)) +
                ") runs its overridden run() only with the fork start method: a '" + method +
                "' child is a fresh program that cannot rebuild the object. Pass a function "
                "as the target instead, or start it with .start_method = \"fork\"");
        if (target_ && target_->refusal()) throw std::logic_error(target_->refusal());
        std::string job;
        std::vector<int> fds;
        {
            detail::OutputArchive ar(job);
            ar(cfg);
            const bool has_target = target_ != nullptr;
            ar(has_target);
            if (has_target) {
                detail::save_function(ar, target_->entry());
                target_->save(ar);
            }
            // The parent's pidfd goes first (the child's lifeline), then whatever descriptors
            // the arguments carry, in the order the archive numbered them.
            fds.push_back(platform::self_pidfd());
            fds.insert(fds.end(), ar.fds().begin(), ar.fds().end());
            if (cfg.has_tracker) fds.push_back(detail::tracker_fd());  // last: see run_job
        }
        if (server)
            popen = server->start_child(job, fds);
        else
            popen = method == "spawn" ? detail::start_spawn(job, fds) : detail::start_forkserver(job, fds);
    }
    {
        std::lock_guard lk(s.mu);
        s.popen = std::move(popen);
    }
    // The child has its copy of the target and arguments; drop the parent's, as Python's
    // start() does, so that a Connection given to the child is not held open here as well.
    target_.reset();
    detail::register_child(state_);
}

void Process::close() {
    auto& s = state();
    {
        std::lock_guard lk(s.mu);
        if (s.closed) return;
        if (s.popen && !s.popen->poll())
            throw std::logic_error(
                "mproc: cannot close a process while it is still running; call join() or "
                "terminate() first");
    }
    detail::cleanup_finished_children();
    std::lock_guard lk(s.mu);
    s.popen.reset();
    s.closed = true;
}

namespace {
std::string exitcode_name(int code) {
    if (code >= 0) return std::to_string(code);
    if (const std::string abbrev = platform::signal_name(-code); !abbrev.empty()) return "-SIG" + abbrev;
    return std::to_string(code);
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const BaseProcess& p) {
    auto& s = p.state();
    std::lock_guard lk(s.mu);
    std::string status;
    std::optional<int> code;
    std::optional<int> pid;
    int parent = s.creator_pid;
    if (s.kind == ProcessKind::Current) {
        status = "started";
        pid = platform::get_pid();
        parent = platform::get_ppid();
    } else if (s.kind == ProcessKind::Parent) {
        status = "unknown";
        pid = s.pid;
    } else if (s.closed) {
        status = "closed";
    } else if (s.creator_pid != platform::get_pid()) {
        status = "unknown";
    } else if (!s.popen) {
        status = "initial";
    } else {
        pid = s.popen->pid();
        code = s.popen->poll();
        status = code ? "stopped" : "started";
    }
    os << "<" << (s.kind == ProcessKind::Current && s.name == "MainProcess" ? "_MainProcess" : "Process")
       << " name='" << s.name << "'";
    if (pid) os << " pid=" << *pid;
    os << " parent=" << parent << " " << status;
    if (code) os << " exitcode=" << exitcode_name(*code);
    if (s.daemon) os << " daemon";
    return os << ">";
}

BaseProcess current_process() { return BaseProcess(detail::current_state()); }

std::optional<ParentProcess> parent_process() {
    std::shared_ptr<ProcessState> p;
    {
        std::lock_guard lk(detail::fork_mutex());
        p = detail::registry().parent;
    }
    if (!p) return std::nullopt;
    return ParentProcess(std::move(p));
}

std::vector<BaseProcess> active_children() {
    detail::cleanup_finished_children();
    std::lock_guard lk(detail::fork_mutex());
    std::vector<BaseProcess> out;
    for (auto& k : detail::registry().children) out.push_back(BaseProcess(k));
    return out;
}

}  // namespace mproc
