// src/pool/process_core.cpp: ProcessCore's public members, and the pools alive at exit.

#include "pool/process_core_impl.hpp"

namespace mproc::detail::pool {

Chunk::Chunk() = default;
Chunk::Chunk(Chunk&&) noexcept = default;
Chunk& Chunk::operator=(Chunk&&) noexcept = default;
Chunk::~Chunk() = default;

Chunk chunk_head(std::shared_ptr<JobBase> job, std::size_t first, std::shared_ptr<const std::string> prefix,
                 std::size_t count, const Timeout& timeout) {
    Chunk c;
    c.job = std::move(job);
    c.first = first;
    c.prefix = std::move(prefix);
    c.timeout = timeout;
    c.count = count;
    return c;
}

Chunk packed_chunk(std::shared_ptr<JobBase> job, std::size_t first, std::shared_ptr<const std::string> prefix,
                   const PackedItems& items, const Timeout& timeout, std::string buffer) {
    Chunk c = chunk_head(std::move(job), first, std::move(prefix), items.count, timeout);
    c.items = std::move(buffer);
    const char* item = static_cast<const char*>(items.data);
    for (std::size_t i = 0; i < items.count; ++i) items.pack(c.items.data() + i * items.size, item + i * items.stride);
    c.fixed = static_cast<std::uint32_t>(items.size);
    return c;
}

namespace {
std::shared_ptr<const std::vector<int>> own_copies(const std::vector<int>& fds) {
    if (fds.empty()) return nullptr;
    auto* v = new std::vector<int>;
    for (int fd : fds) v->push_back(platform::dup_fd(fd).release());
    return std::shared_ptr<const std::vector<int>>(v, [](const std::vector<int>* p) {
        for (int fd : *p) platform::UniqueFd closer(fd);
        delete p;
    });
}

}  // namespace

ProcessCore::ProcessCore(const PoolOptions& options) : impl_(std::make_shared<Impl>()) {
    gate_ = impl_;
    const int p = options.processes.value_or(process_cpu_count());
    if (p < 1) throw std::invalid_argument("mproc: a pool needs at least one process (processes = " + std::to_string(p) + ")");
    if (options.task_timeout && options.task_timeout->count() <= 0)
        throw std::invalid_argument("mproc: a task deadline must be positive");
    if (options.maxtasksperchild && *options.maxtasksperchild == 0)
        throw std::invalid_argument("mproc: maxtasksperchild must be 1 or more, or empty for no limit");
    processes_ = static_cast<std::size_t>(p);
    default_timeout_ = options.task_timeout;
    Impl& im = *impl_;
    im.opts = options;
    im.method = options.start_method.empty() ? get_start_method() : options.start_method;
    const auto all = get_all_start_methods();
    if (std::find(all.begin(), all.end(), im.method) == all.end())
        throw std::invalid_argument("mproc: unknown start method '" + im.method + "' (choose fork, spawn or forkserver)");
    if (options.initializer && options.initializer.target()->refusal())
        throw std::logic_error(options.initializer.target()->refusal());
    if (im.method == "fork") {
        im.server = std::make_shared<ForkServer>(true);
        im.server->start();
    }
    im.slots = RegionRef::create(processes_ * sizeof(Slot));
    im.wake_fd = platform::make_event();
    try {
        std::lock_guard lk(im.mu);
        for (std::uint32_t i = 0; i < processes_; ++i) im.workers.push_back(im.start_worker(i));
    } catch (...) {
        std::unique_lock lk(im.mu);
        im.shutdown(lk, true);
        throw;
    }
    im.thread = std::thread([impl = impl_] { impl->run(); });
    register_live(impl_);
}

ProcessCore::~ProcessCore() { terminate(); }

void ProcessCore::set_finish_at_exit() {
    std::lock_guard lk(impl_->mu);
    impl_->finish_at_exit = true;
}

// Pools alive when their process exits (a static, a fork child whose target returned): the exit
// stops them before it ends its children, as Python's do (a Pool's finalizer terminates it;
// ProcessPoolExecutor's _python_exit lets the work submitted finish). Else the dispatcher would
// see the workers the exit sends SIGTERM die and start replacements while the exit walks and
// waits for its children (it hung or crashed there). Only pools this process made: a fork child
// copies the list, not the dispatchers.
namespace {
struct LivePools {
    std::mutex mu;
    std::vector<std::pair<pid_t, std::weak_ptr<ProcessCore::Impl>>> all;
};
LivePools& live_pools() {
    static auto* l = new LivePools;  // never destroyed: the exit hook runs after static destructors
    return *l;
}
}  // namespace

void ProcessCore::register_live(const std::shared_ptr<Impl>& impl) {
    static const bool hooked = (add_exit_hook(&ProcessCore::stop_live_pools), install_exit_function(), true);
    (void)hooked;
    LivePools& l = live_pools();
    std::lock_guard lk(l.mu);
    std::erase_if(l.all, [](const auto& p) { return p.second.expired(); });
    l.all.emplace_back(platform::get_pid(), impl);
}

void ProcessCore::stop_live_pools() noexcept {
    std::vector<std::shared_ptr<Impl>> mine;
    {
        LivePools& l = live_pools();
        std::lock_guard lk(l.mu);
        const pid_t self = platform::get_pid();
        for (auto& [pid, weak] : l.all)
            if (pid == self)
                if (auto impl = weak.lock()) mine.push_back(std::move(impl));
        l.all.clear();
    }
    for (auto& impl : mine) {
        {
            std::lock_guard lk(impl->mu);
            if (impl->finish_at_exit) {
                if (impl->state == Impl::State::Running) impl->state = Impl::State::Closed;
            } else {
                impl->state = Impl::State::Terminating;
            }
        }
        impl->wake();
        if (impl->thread.get_id() == std::this_thread::get_id()) continue;
        std::call_once(impl->joined, [&] {
            if (impl->thread.joinable()) impl->thread.join();
        });
    }
}

void ProcessCore::submit(Chunk&& c, const std::vector<int>& fds, bool stream) {
    c.fds = own_copies(fds);
    const bool timed = c.timeout.has_value();
    std::exception_ptr refused;
    bool queued = false;
    {
        std::unique_lock lk(impl_->mu);
        refused = impl_->admit_locked(stream);
        if (!refused && !impl_->stopped) {
            // Behind other queued chunks it waits its turn (and goes out in a batch); else it
            // goes straight to a free worker, from this thread.
            const bool first_in_line = impl_->tasks.queue.empty();
            impl_->tasks.queue.push_back(std::move(c));
            if (first_in_line) {
                impl_->dispatch();
                queued = !impl_->tasks.queue.empty();
            }
            impl_->flush(lk);
        } else if (!refused) {
            refused = Gate::terminated_error();
        }
    }
    if (refused) return fail_items(c.job, c.first, c.count, refused);
    // The dispatcher must hear of work left waiting (once: later chunks queue behind it), and
    // of a deadline to watch.
    if (queued || timed) impl_->wake();
}

void ProcessCore::submit_group(std::vector<Chunk>& group, bool stream) {
    if (group.empty()) return;
    std::exception_ptr refused;
    bool queued = false, timed = false;
    {
        std::unique_lock lk(impl_->mu);
        refused = impl_->admit_locked(stream);
        if (!refused && impl_->stopped) refused = Gate::terminated_error();
        if (!refused) {
            // As submit: the first in line goes to free workers from this thread (a whole
            // group fills their batches); the dispatcher hears of what is left waiting.
            const bool first_in_line = impl_->tasks.queue.empty();
            for (Chunk& c : group) {
                timed = timed || c.timeout.has_value();
                impl_->tasks.queue.push_back(std::move(c));
            }
            if (first_in_line) {
                impl_->dispatch();
                queued = !impl_->tasks.queue.empty();
            }
            impl_->flush(lk);
        }
    }
    if (refused)
        for (Chunk& c : group) fail_items(c.job, c.first, c.count, refused);
    group.clear();
    if (queued || timed) impl_->wake();
}

void ProcessCore::submit_packed(std::shared_ptr<JobBase> job, std::size_t first,
                                const std::shared_ptr<const std::string>& prefix, const PackedItems& items,
                                const Timeout& timeout, bool stream) {
    submit(packed_chunk(std::move(job), first, prefix, items, timeout ? timeout : default_timeout_,
                        take_buffer(items.count * items.size)),
           {}, stream);
}

std::string ProcessCore::take_buffer(std::size_t size) {
    if (size < TaskQueue::kSpareMin) return std::string(size, '\0');
    std::lock_guard lk(impl_->mu);
    return impl_->tasks.take_buffer(size);
}

void ProcessCore::adopt(JobBase& job) const { job.set_pump(impl_, &Impl::pump); }

bool ProcessCore::read_results() {
    // Not polled, the results are the pool's thread's: trying its mutex would only contend
    // with it (a map's window out, or an idle rank's engine at every round).
    if (!impl_->polled.load(std::memory_order_relaxed)) return false;
    std::unique_lock lk(impl_->mu, std::try_to_lock);
    if (!lk.owns_lock()) return false;
    bool any = false;
    for (auto& w : impl_->workers)
        if (!w->inflight.empty() && w->chan.pending()) {
            impl_->read_messages(*w);
            any = true;
        }
    if (any) {
        impl_->dispatch();
        impl_->flush(lk);
    }
    return any;
}

void ProcessCore::set_polled(bool on) noexcept {
    if (impl_->polled.exchange(on, std::memory_order_relaxed) && !on) impl_->wake();
}

bool ProcessCore::stop(const JobBase& job) {
    std::lock_guard lk(impl_->mu);
    for (auto& w : impl_->workers) {
        if (w->killed != Impl::Kill::None) continue;
        // Sent to this worker, whether it has begun the chunk or not: a chunk on its way (out
        // of the queue, not yet started) would otherwise run to its end after terminate().
        const bool holds = std::any_of(w->inflight.begin(), w->inflight.end(),
                                       [&](const auto& f) { return f.chunk.job.get() == &job; });
        if (!holds) continue;
        w->killed = Impl::Kill::Cancel;
        w->proc.kill();
        return true;
    }
    return false;
}

bool ProcessCore::unqueue(const JobBase& job) {
    std::lock_guard lk(impl_->mu);
    if (job.started()) return false;
    const auto before = impl_->tasks.queue.size();
    std::erase_if(impl_->tasks.queue, [&](const Chunk& c) { return c.job.get() == &job; });
    return impl_->tasks.queue.size() != before;
}

void ProcessCore::stop_workers(bool kill) {
    cancel_pending();
    {
        std::lock_guard lk(impl_->mu);
        if (impl_->state == Impl::State::Running) impl_->state = Impl::State::Closed;
        if (impl_->state != Impl::State::Terminating) {
            impl_->stop_signal_term = !kill;
            impl_->stop_reason = std::make_exception_ptr(futures::BrokenProcessPool(
                std::string("mproc: the executor's workers were ") + (kill ? "killed" : "terminated") +
                " (" + (kill ? "kill_workers" : "terminate_workers") + "()) while this task ran"));
            impl_->state = Impl::State::Terminating;
        }
    }
    impl_->wake();
    join();
}

// Cancels the calls of queued chunks that no worker has begun; outside mu, since cancelling
// completes a call and may run its callbacks.
void ProcessCore::cancel_pending() {
    std::vector<std::shared_ptr<JobBase>> jobs;
    {
        std::lock_guard lk(impl_->mu);
        for (auto& c : impl_->tasks.queue)
            if (!c.job->started()) jobs.push_back(c.job);
    }
    for (auto& j : jobs) j->cancel();
}

void ProcessCore::terminate() {
    {
        std::lock_guard lk(impl_->mu);
        impl_->state = Impl::State::Terminating;
    }
    impl_->wake();
    join();
}

void ProcessCore::join() {
    impl_->check_joinable();
    // From a callback (the dispatcher itself) there is nothing to wait for: it ends on return.
    if (impl_->thread.get_id() == std::this_thread::get_id()) return;
    std::call_once(impl_->joined, [&] {
        if (impl_->thread.joinable()) impl_->thread.join();
    });
}
}  // namespace mproc::detail::pool
