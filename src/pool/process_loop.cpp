// src/pool/process_loop.cpp: the loop that moves the process pool's messages: the dispatcher
// thread's, and the round a thread waiting for a result runs itself (ProcessCore).

#include "pool/process_core_impl.hpp"

namespace mproc::detail::pool {

void ProcessCore::Impl::read_messages(Worker& w) {
    std::vector<int> fds;
    try {
        while (w.chan.pending()) {
            const std::string& msg = w.chan.receive(fds);
            handle_message(w, msg, fds);
            close_unclaimed(fds);
        }
    } catch (const EOFError&) {
        w.dead = true;
    } catch (const std::exception& e) {
        // Not a message a worker of ours writes: this worker cannot be trusted any more.
        std::fprintf(stderr, "mproc: pool worker sent a malformed message (%s); killing it\n", e.what());
        w.dead = true;
        w.proc.kill();
    }
    close_unclaimed(fds);
}

void ProcessCore::Impl::handle_message(Worker& w, const std::string& msg, std::vector<int>& fds) {
    InputArchive ar(message_body(msg), fds);
    std::uint8_t op = 0;
    ar(op);
    if (op == kHello) {
        w.hello = true;
        return;
    }
    if (op == kInitFailed) {
        const std::exception_ptr e = load_exception(ar);
        make_broken(std::make_exception_ptr(futures::BrokenProcessPool(
            "mproc: the pool's initializer failed in a worker: " + describe_exception(e))));
        return;
    }
    std::uint32_t records = 0;
    std::int64_t elapsed = 0;
    ar(records, elapsed);
    std::size_t items = 0;
    for (std::size_t k = 0; k < records && k < w.inflight.size(); ++k) items += w.inflight[k].chunk.count;
    tasks.note_batch_time(items, elapsed);
    if (w.batches_out > 0) --w.batches_out;
    w.big_out = false;
    for (std::uint32_t r = 0; r < records; ++r) {
        std::uint64_t seq = 0;
        ar(seq);
        if (w.inflight.empty() || w.inflight.front().seq != seq)
            throw SerializationError("mproc: a worker answered a chunk it was not given");
        InFlight f = std::move(w.inflight.front());
        w.inflight.pop_front();
        std::uint64_t bytes = 0;
        ar(bytes);
        if (bytes > ar.remaining()) throw SerializationError("mproc: a worker's result record is truncated");
        InputArchive record(ar.rest().substr(0, bytes), ar.fd_slots());
        ar.skip(bytes);
        std::uint32_t count = 0;
        try {
            record(count);
            f.chunk.job->deliver(f.chunk.first, count, record, deferred);
            tasks.recycle(std::move(f.chunk.items));
        } catch (...) {
            // A result that does not decode fails its chunk's items; the next record is read
            // on its own.
            fail_later(f.chunk, std::current_exception());
        }
    }
}

void ProcessCore::Impl::flush(std::unique_lock<std::mutex>& lk) { run_deferred(lk, deferred); }

namespace {
// A ready entry of round()'s wait that names a worker's ring found not empty by looking at it,
// not by a poll (so its wake-up descriptor needs no draining): kFromRing | the worker's index.
constexpr std::size_t kFromRing = std::size_t{1} << (sizeof(std::size_t) * 8 - 1);

void add_pending(const std::vector<Channel::Rings>& rings, std::vector<std::size_t>& ready) {
    for (std::size_t k = 0; k < rings.size(); ++k)
        if (rings[k].pending()) ready.push_back(kFromRing | k);
}

// A waiting thread's look before it sleeps (kLookBeforeSleep), at the workers' rings and at its
// job (another thread may read its result): shared memory reads, no system call. A worker's
// death is seen by the sleep that follows, within the look.
// peer_cpus: where the workers holding work last looked (Look).
// crowded: the workers holding work take every CPU: yield from the start.
std::vector<std::size_t> look(const std::vector<Channel::Rings>& rings, std::span<const int> peer_cpus,
                              bool crowded, const JobBase& job) {
    std::vector<std::size_t> ready;
    for (Look l(peer_cpus, crowded);;) {
        add_pending(rings, ready);
        if (!ready.empty() || job.finished() || !l.again()) return ready;
    }
}

// Sleeps on fds until one is readable or `until`, having said so on each ring (Channel::arm),
// so that a worker publishing a message notifies its wake-up descriptor.
std::vector<std::size_t> sleep_on(const std::vector<Channel::Rings>& rings, std::span<const int> fds,
                                  const platform::Deadline& until) {
    std::vector<std::size_t> ready;
    std::size_t armed = 0;
    bool quiet = true;
    while (armed < rings.size() && quiet) quiet = rings[armed++].arm();
    if (quiet) ready = platform::wait_any_readable(fds, until);
    for (std::size_t k = 0; k < armed; ++k) rings[k].disarm();
    if (!quiet) add_pending(rings, ready);
    return ready;
}
}  // namespace

bool ProcessCore::Impl::answer_soon() const {
    if (tasks.item_ns <= 0) return true;  // not known yet
    const double window = std::chrono::duration<double, std::nano>(kLookBeforeSleep).count();
    for (auto& w : workers) {
        if (w->inflight.empty()) continue;
        // The first of its batches (what the worker answers first) is about items / batches_out
        // long: soon when that fits the window. Counted only as far as the answer needs, not
        // over every chunk of a long batch at every round.
        const double most = window / tasks.item_ns * static_cast<double>(std::max<std::size_t>(w->batches_out, 1));
        double items = 0;
        for (auto f = w->inflight.begin(); f != w->inflight.end() && items <= most; ++f)
            items += static_cast<double>(f->chunk.count);
        if (items <= most) return true;
    }
    return false;
}

void ProcessCore::Impl::round(std::unique_lock<std::mutex>& lk, int extra, platform::Deadline until,
                              const JobBase* job) {
    dispatch();
    flush(lk);
    const platform::Deadline due = enforce_deadlines();
    const bool blind = extra == wake_fd.get() && (helpers > 0 || polled.load(std::memory_order_relaxed));
    if (blind) until = platform::Deadline::after(Timeout(kBlindCheck));
    std::vector<int> fds{extra};
    std::vector<std::uint64_t> ids;
    // Copies, which keep the rings mapped while another thread handles a worker's death.
    std::vector<Channel::Rings> rings;
    std::vector<int> peer_cpus;
    for (auto& w : workers) {
        fds.push_back(blind ? -1 : w->chan.wake_fd());
        fds.push_back(w->proc.sentinel());
        ids.push_back(w->id);
        if (blind) continue;  // the dispatcher, leaving the workers to a waiting thread
        rings.push_back(w->chan.rings());
        if (job && !w->inflight.empty()) peer_cpus.push_back(rings.back().peer_cpu());
    }
    const bool looks = job && answer_soon();
    if (looks)
        for (auto& r : rings) r.note_cpu();  // for the workers' looks
    lk.unlock();
    // A waiting thread looks before it sleeps; the dispatcher sleeps.
    std::vector<std::size_t> ready;
    // When the workers holding work take every CPU, a looking thread takes one of theirs
    // unless it yields from the start (chunksize-1 maps, 2 workers on 2 CPUs: 0.8-1.0M tasks/s
    // spinning, 1.2-1.9M not looking at all).
    static const std::size_t cpus = static_cast<std::size_t>(std::max(1, process_cpu_count()));
    if (looks) ready = look(rings, peer_cpus, peer_cpus.size() >= cpus, *job);
    if (ready.empty() && !(job && job->finished())) ready = sleep_on(rings, fds, earlier(due, until));
    lk.lock();
    std::vector<std::uint64_t> died;
    for (std::size_t r : ready) {
        if (r & kFromRing) {
            if (Worker* w = find(ids[r & ~kFromRing])) read_messages(*w);
            continue;
        }
        if (r == 0) {
            platform::event_drain(extra);  // the dispatcher's wake-up, or the waiter's
            continue;
        }
        const std::uint64_t id = ids[(r - 1) / 2];
        Worker* w = find(id);
        if (!w) continue;  // another thread handled its death
        if ((r - 1) % 2 == 0) {
            platform::event_drain(w->chan.wake_fd());
            read_messages(*w);
        } else {
            died.push_back(id);
        }
    }
    for (std::uint64_t id : died)
        for (std::size_t i = 0; i < workers.size(); ++i)
            if (workers[i]->id == id) {
                on_death(i);
                break;
            }
    dispatch();
    flush(lk);
}

const platform::Deadline& ProcessCore::Impl::earlier(const platform::Deadline& a, const platform::Deadline& b) {
    if (a.is_never()) return b;
    if (b.is_never()) return a;
    return *a.remaining() < *b.remaining() ? a : b;
}

bool ProcessCore::Impl::help(JobBase& job, const Timeout& timeout) {
    const int fd = thread_event_fd();
    job.watch(fd);
    // Completed meanwhile (its wake-up may have gone to no one): the caller's condition
    // variable has it.
    if (job.finished()) {
        job.unwatch(fd);
        return false;
    }
    {
        std::unique_lock lk(mu);
        if (stopped || state == State::Terminating) {
            lk.unlock();
            job.unwatch(fd);
            return false;
        }
        ++helpers;
        helper_fds.push_back(fd);
        round(lk, fd, platform::Deadline::after(timeout), &job);
        std::erase(helper_fds, fd);
        --helpers;
    }
    job.unwatch(fd);
    return true;
}

bool ProcessCore::Impl::pump(const std::shared_ptr<void>& core, JobBase& job, const Timeout& timeout) {
    return static_cast<Impl*>(core.get())->help(job, timeout);
}

void ProcessCore::Impl::run() {
    std::unique_lock lk(mu);
    for (;;) {
        if (state == State::Terminating) return shutdown(lk, true);
        if (broken) fail_queued();
        dispatch();
        flush(lk);
        const bool idle = std::all_of(workers.begin(), workers.end(), [](auto& w) { return w->inflight.empty(); });
        if (state == State::Closed && streams == 0 && tasks.queue.empty() && idle) return shutdown(lk, false);
        round(lk, wake_fd.get(), platform::Deadline::never());
    }
}

void ProcessCore::Impl::shutdown(std::unique_lock<std::mutex>& lk, bool now) {
    if (now) {
        for (auto& w : workers) {
            w->killed = Kill::Pool;
            if (stop_signal_term)
                w->proc.terminate();
            else
                w->proc.kill();
        }
    } else {
        for (auto& w : workers) stop_worker(*w);
    }
    for (auto& w : workers) w->proc.join();
    const auto e = stop_reason ? stop_reason : terminated_error();
    for (auto& w : workers) {
        for (auto& f : w->inflight) fail_later(f.chunk, e);
        w->proc.close();
    }
    workers.clear();
    for (auto& c : tasks.queue) fail_later(c, e);
    tasks.queue.clear();
    stopped = true;
    flush(lk);
    if (server) server->stop();
}

}  // namespace mproc::detail::pool
