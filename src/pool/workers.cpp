// src/pool/workers.cpp: which workers live and what each holds: starting and stopping them,
// their deaths and deadlines, and failing what a broken pool held (ProcessCore).

#include <cstdio>

#include "pool/process_core_impl.hpp"

namespace mproc::detail::pool {

namespace {
using Clock = std::chrono::steady_clock;

std::string describe_exit(int code) {
    if (code < 0) {
        const std::string name = platform::signal_name(-code);
        return "was killed by signal " + (name.empty() ? std::to_string(-code) : "SIG" + name);
    }
    return "exited with code " + std::to_string(code);
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", s);
    return buf;
}

std::atomic<unsigned> worker_counter{0};
}  // namespace

auto ProcessCore::Impl::start_worker(std::uint32_t slot) -> std::unique_ptr<Worker> {
    auto [pool_conn, worker_conn] = mproc::Pipe(true);
    auto [mine, theirs] = Channel::create(std::move(pool_conn), std::move(worker_conn));
    RegionRef r = slots;
    r.offset = slot * sizeof(Slot);
    static_cast<Slot*>(slots.data())[slot].pos.store(0, std::memory_order_relaxed);
    static_cast<Slot*>(slots.data())[slot].ready.store(0, std::memory_order_relaxed);
    auto target = make_worker_target(std::move(theirs), std::move(r), opts.max_result_bytes,
                                                 opts.initializer.target());
    const char* kind = method == "fork" ? "Fork" : method == "spawn" ? "Spawn" : "ForkServer";
    ProcessOptions po{.name = std::string(kind) + "PoolWorker-" + std::to_string(++worker_counter),
                      .daemon = true,
                      .start_method = method};
    auto w = std::make_unique<Worker>();
    w->id = next_worker_id++;
    w->proc = make_pool_process(std::move(po), std::move(target), server);
    w->chan = std::move(mine);
    w->slot = slot;
    w->proc.start();
    return w;
}

void ProcessCore::Impl::stop_worker(Worker& w) {
    if (w.stopping || w.dead) return;
    w.stopping = true;
    std::string stop;
    begin_message(stop);
    OutputArchive ar(stop);
    ar(kStop);
    try {
        w.chan.send(stop);
    } catch (const std::exception&) {
        w.dead = true;
    }
}

auto ProcessCore::Impl::slice(const Chunk& c, std::size_t from, std::size_t to) -> Chunk {
    Chunk s;
    s.job = c.job;
    s.first = c.first + from;
    s.count = to - from;
    s.prefix = c.prefix;
    s.fds = c.fds;
    s.timeout = c.timeout;
    s.fixed = c.fixed;
    s.units = c.units;
    std::size_t off = 0, len = 0;
    if (c.fixed) {
        off = from * c.fixed;
        len = (to - from) * c.fixed;
    } else {
        for (std::size_t i = 0; i < from; ++i) off += c.sizes[i];
        for (std::size_t i = from; i < to; ++i) len += c.sizes[i];
        s.sizes.assign(c.sizes.begin() + static_cast<std::ptrdiff_t>(from), c.sizes.begin() + static_cast<std::ptrdiff_t>(to));
    }
    s.items = c.items.substr(off, len);
    return s;
}

auto ProcessCore::Impl::take_front(Chunk& c, std::size_t n) -> Chunk {
    Chunk head = slice(c, 0, n);
    c.first += n;
    c.count -= n;
    c.items.erase(0, head.items.size());
    if (!c.fixed) c.sizes.erase(c.sizes.begin(), c.sizes.begin() + static_cast<std::ptrdiff_t>(n));
    return head;
}

std::optional<std::pair<std::size_t, std::size_t>> ProcessCore::Impl::running(const Worker& w) const {
    const std::uint64_t pos = slot_of(w).pos.load(std::memory_order_acquire);
    for (std::size_t k = 0; k < w.inflight.size(); ++k)
        if (slot_seq(pos) == slot_seq(slot_pos(w.inflight[k].seq, 0))) {
            const std::size_t item = slot_item(pos);
            if (item >= w.inflight[k].chunk.count) return std::nullopt;
            return std::pair{k, item};
        }
    return std::nullopt;
}

void ProcessCore::Impl::on_death(std::size_t index) {
    Worker& w = *workers[index];
    read_messages(w);  // results it sent before it died
    w.proc.join();
    const int code = w.proc.exitcode().value_or(255);
    const pid_t pid = w.proc.pid().value_or(-1);
    if (opts.break_on_worker_death && w.killed == Kill::None && !w.stopping)
        make_broken(std::make_exception_ptr(futures::BrokenProcessPool(
            "mproc: a process in the process pool was terminated abruptly while the future was "
            "running or pending (pid " + std::to_string(pid) + " " + describe_exit(code) + ")")));
    const bool was_ready = w.hello || slot_of(w).ready.load(std::memory_order_acquire);
    if (!was_ready && w.killed != Kill::Pool && !broken) {
        make_broken(std::make_exception_ptr(futures::BrokenProcessPool(
            "mproc: a pool worker (pid " + std::to_string(pid) + ") " + describe_exit(code) +
            " before its initializer finished")));
    }
    std::exception_ptr reason;
    if (w.killed == Kill::Deadline)
        reason = std::make_exception_ptr(TimeoutError(
            "mproc: the task ran past its deadline of " + seconds_text(w.killed_after) +
            "; its worker (pid " + std::to_string(pid) + ") was killed and replaced"));
    else
        reason = std::make_exception_ptr(WorkerLostError(
            "mproc: the worker process (pid " + std::to_string(pid) + ") running this task " +
            describe_exit(code)));
    // The item it was running fails; every other item it held runs again elsewhere:
    // those it finished (their results died with it) and those it never began.
    const auto at = running(w);
    std::deque<Chunk> again;
    for (std::size_t k = 0; k < w.inflight.size(); ++k) {
        Chunk& c = w.inflight[k].chunk;
        if (!at || at->first != k) {
            again.push_back(std::move(c));
            continue;
        }
        const std::size_t item = at->second;
        c.job->set_error(c.first + item, reason, deferred);
        if (item > 0) again.push_back(slice(c, 0, item));
        if (item + 1 < c.count) again.push_back(slice(c, item + 1, c.count));
    }
    w.inflight.clear();
    for (auto it = again.rbegin(); it != again.rend(); ++it) tasks.queue.push_front(std::move(*it));
    const std::uint32_t slot = w.slot;
    w.proc.close();
    const bool replace = state != State::Terminating && !broken;
    workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(index));
    if (broken) fail_queued();
    // Threads polling now wait on the dead worker's descriptors, whose numbers the
    // replacement may reuse: have them look again.
    for (int fd : helper_fds) platform::event_notify(fd);
    platform::event_notify(wake_fd.get());  // and so does the dispatcher
    if (replace) {
        try {
            workers.push_back(start_worker(slot));
        } catch (...) {
            make_broken(std::make_exception_ptr(futures::BrokenProcessPool(
                "mproc: could not start a replacement worker: " +
                describe_exception(std::current_exception()))));
        }
    }
}

platform::Deadline ProcessCore::Impl::enforce_deadlines() {
    std::optional<Clock::time_point> next;
    const auto now = Clock::now();
    auto consider = [&](Clock::time_point t) {
        if (!next || t < *next) next = t;
    };
    for (auto& wp : workers) {
        Worker& w = *wp;
        if (w.killed != Kill::None || w.inflight.empty()) continue;
        const bool any_timed = std::any_of(w.inflight.begin(), w.inflight.end(),
                                           [](const InFlight& f) { return f.chunk.timeout.has_value(); });
        if (!any_timed) continue;
        const auto at = running(w);
        if (!at || !w.inflight[at->first].chunk.timeout) {
            consider(now + std::chrono::milliseconds(10));  // between items: look again soon
            continue;
        }
        const double limit = w.inflight[at->first].chunk.timeout->count();
        const std::int64_t started = slot_of(w).started_ns.load(std::memory_order_relaxed);
        const auto due = Clock::time_point(std::chrono::nanoseconds(started)) +
                         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limit));
        if (now >= due) {
            w.killed = Kill::Deadline;
            w.killed_after = limit;
            w.proc.kill();
        } else {
            consider(due);
        }
    }
    if (!next) return platform::Deadline::never();
    return platform::Deadline::until(*next);
}

void ProcessCore::Impl::fail_later(const Chunk& c, const std::exception_ptr& e) {
    for (std::size_t i = 0; i < c.count; ++i) c.job->set_error(c.first + i, e, deferred);
}

void ProcessCore::Impl::make_broken(std::exception_ptr e) {
    if (broken) return;
    broken = e;
    fail_queued();
    for (auto& wp : workers) {
        for (auto& f : wp->inflight) fail_later(f.chunk, e);
        wp->inflight.clear();
        stop_worker(*wp);  // a broken pool runs nothing more; the workers may go
    }
}

void ProcessCore::Impl::fail_queued() {
    for (auto& c : tasks.queue) fail_later(c, broken);
    tasks.queue.clear();
}

auto ProcessCore::Impl::find(std::uint64_t id) -> Worker* {
    for (auto& w : workers)
        if (w->id == id) return w.get();
    return nullptr;
}

}  // namespace mproc::detail::pool
