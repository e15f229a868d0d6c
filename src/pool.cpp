// Process and thread pools (Python: multiprocessing.pool).
//
// The process pool is N workers, each joined to the pool by its own duplex Pipe, and the
// pool's state (queued chunks, which chunks each worker holds) under one mutex: knowing what
// each worker holds is what lets a worker's death fail only its own task (docs/design.md,
// Pools). Chunks are sent by whoever submits them, when a worker is free, else by the
// dispatcher thread; results are read by the dispatcher thread, or by a thread waiting for a
// result, which polls the workers itself rather than wait to be woken (one hand-off fewer on
// a round trip). Polling happens without the mutex, reading and sending with it; what the
// results set off in user code (callbacks) runs after it is released. Protocol, one message
// each way per batch of chunks:
//   pool -> worker  'T' seq, prefix (chunk function, callable), item count, item sizes, items
//                   'S' stop: finish what was sent, then exit
//   worker -> pool  'H' the initializer ran; 'I' exception: the initializer threw
//                   'R' seq, count, per item: 1 + value, or 0 + exception
// Each worker also has a slot of shared memory saying which item of which chunk it runs and
// since when: the dispatcher reads it to enforce deadlines, and after a death to tell the item
// that killed the worker from those that finished or never started.
#include "mproc/pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "mproc/connection.hpp"
#include "mproc/detail/shared_region.hpp"
#include "platform/platform.hpp"
#include "exit_hooks.hpp"
#include "forkserver.hpp"
#include "persistent_fds.hpp"
#include "threading_internal.hpp"

namespace mproc::detail::pool {

namespace {
using Clock = std::chrono::steady_clock;

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// One per worker position, in a shared region; written only by the worker.
struct alignas(64) Slot {
    std::atomic<std::uint64_t> pos;         // (chunk seq mod 2^32) << 32 | item index
    std::atomic<std::int64_t> started_ns;   // when that item began, steady clock
    // Set once the initializer has run. The 'H' message says so too, but a worker that dies
    // with a task unread makes the kernel report a reset on our end before the messages it
    // sent: the slot survives that.
    std::atomic<std::uint32_t> ready;
};
static_assert(sizeof(Slot) == 64);

std::uint64_t slot_pos(std::uint64_t seq, std::uint32_t item) noexcept {
    return ((seq & 0xffffffffu) << 32) | item;
}

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
}  // namespace

namespace {
void mark_ready(void* slot) noexcept { static_cast<Slot*>(slot)->ready.store(1, std::memory_order_release); }
}  // namespace

void ChunkContext::begin_chunk(std::uint64_t seq, bool timed) noexcept {
    seq_ = seq;
    timed_ = timed;
    begin_item(0);
}

void ChunkContext::begin_item(std::uint32_t index) noexcept {
    auto* s = static_cast<Slot*>(slot_);
    if (timed_) s->started_ns.store(now_ns(), std::memory_order_relaxed);
    s->pos.store(slot_pos(seq_, index), std::memory_order_release);
}

std::exception_ptr result_too_large(std::size_t size, std::size_t cap) {
    return std::make_exception_ptr(ProcessError(
        "mproc: the task's result takes " + std::to_string(size) + " bytes serialized, more than "
        "the pool's max_result_bytes (" + std::to_string(cap) + "); it was not sent"));
}

void advise_huge_pages(void* p, std::size_t bytes) noexcept { platform::advise_huge_pages(p, bytes); }

void run_callback(const std::function<void()>& f) noexcept {
    try {
        f();
    } catch (...) {
        const std::string text = "mproc: a pool callback threw " + describe_exception(std::current_exception()) + "\n";
        std::fputs(text.c_str(), stderr);
    }
}

// ---------------------------------------------------------------- jobs

JobBase::~JobBase() = default;

namespace {
// Each thread that waits for a pool result has one eventfd, made on first use and kept: a
// result read by another thread wakes it through that.
struct ThreadEvent {
    platform::UniqueFd fd;
};
thread_local ThreadEvent t_event;
int thread_event_fd() {
    if (!t_event.fd) t_event.fd = platform::make_event();
    return t_event.fd.get();
}
}  // namespace

int waiter_fd_if_open() noexcept { return t_event.fd ? t_event.fd.get() : -1; }
// Kept for the thread's life: the leak check counts it as persistent.
const bool g_waiter_kept = (keep_fd_source(&waiter_fd_if_open), true);

void JobBase::watch(int fd) {
    std::lock_guard lk(event_mu_);
    watchers_.push_back(fd);
}

void JobBase::unwatch(int fd) noexcept {
    std::lock_guard lk(event_mu_);
    std::erase(watchers_, fd);
}

void JobBase::signal_completion() noexcept {
    std::lock_guard lk(event_mu_);
    const int mine = t_event.fd ? t_event.fd.get() : -1;
    for (int fd : watchers_)
        if (fd != mine) platform::event_notify(fd);  // the completing thread is not asleep
}

// ---------------------------------------------------------------- progress bar

ProgressBar::ProgressBar(std::size_t total, bool known_total)
    : total_(total), known_(known_total), start_(Clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
    draw(last_done_, true);
}

bool ProgressBar::wanted() { return platform::is_terminal(2); }

void ProgressBar::set_total(std::size_t total) {
    total_ = total;
    known_ = true;
}

void ProgressBar::update(std::size_t done) {
    last_done_ = done;
    const auto now = Clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100) && !(known_ && done == total_)) return;
    last_draw_ = now;
    draw(done, false);
}

void ProgressBar::draw(std::size_t done, bool final) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    char line[160];
    if (known_ && total_ > 0) {
        constexpr int kWidth = 30;
        const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
        const int filled = static_cast<int>(frac * kWidth);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(kWidth, '.');
        const double left = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0.0;
        std::snprintf(line, sizeof line, "\r[%s] %zu/%zu %3.0f%%  %.0f/s  %.0f s left ", bar.c_str(), done,
                      total_, frac * 100, rate, std::ceil(left));
    } else {
        std::snprintf(line, sizeof line, "\r%zu done  %.0f/s ", done, rate);
    }
    std::fputs(line, stderr);
    if (final) std::fputs("\n", stderr);
    std::fflush(stderr);
}

// ---------------------------------------------------------------- the worker process

namespace {
constexpr std::uint8_t kTask = 'T', kStop = 'S', kHello = 'H', kInitFailed = 'I', kResult = 'R';
constexpr std::size_t kBigMessage = 64 * 1024;  // larger chunks are sent only to an idle worker

// Before a worker, or a thread waiting for a result, goes to sleep on its socket, it looks for
// the next message for a short while. Sleeping and being woken costs a wake-up on another CPU,
// which on a virtual machine is tens of microseconds (a halted virtual CPU must be woken); a
// call answered within the window costs neither side a sleep. Bounded, so an idle pool burns
// at most this much CPU per message.
constexpr auto kLookBeforeSleep = std::chrono::microseconds(30);
constexpr unsigned kYieldEvery = 2;

// The readable ones of fds, looking (without sleeping) for at most kLookBeforeSleep; empty
// when none turned readable in that time.
std::vector<std::size_t> look_readable(std::span<const int> fds) {
    const auto until = Clock::now() + kLookBeforeSleep;
    const platform::Deadline now = platform::Deadline::after(Timeout(0.0));
    for (unsigned i = 1;; ++i) {
        std::vector<std::size_t> ready = platform::wait_any_readable(fds, now);
        if (!ready.empty() || Clock::now() >= until) return ready;
        // Now and then a thread that shares this CPU (the other side?) runs first.
        if (i % kYieldEvery == 0) std::this_thread::yield();
    }
}

// Pool messages wear the typed envelope of this tag type: it is what tells a Connection how many
// descriptors travel with a message, and it makes a stray message a clear error.
struct PoolMessage {};

// Starts a message in out (cleared); returns where the descriptor count goes.
std::size_t begin_message(std::string& out) {
    out.clear();
    return write_envelope(out, typeid(PoolMessage));
}

std::string_view message_body(const std::string& msg) {
    return std::string_view(msg).substr(check_envelope(msg, typeid(PoolMessage)).payload_offset);
}

void close_unclaimed(std::vector<int>& fds) noexcept {
    for (int fd : fds)
        if (fd >= 0) platform::UniqueFd closer(fd);
    fds.clear();
}

void worker_entry(InputArchive& ar) {
    platform::keep_freed_memory();
    connection::Connection conn;
    RegionRef slot;
    std::uint64_t cap = 0;
    bool has_init = false;
    ar(conn, slot, cap, has_init);
    conn.set_max_message_size(std::numeric_limits<std::size_t>::max() / 2);
    std::string out;
    {
        begin_message(out);
        OutputArchive hello(out);
        try {
            if (has_init) {
                CodeAddress a;
                ar(a);
                decode_function<void(InputArchive&)>(a)(ar);
            }
            mark_ready(slot.data());
            hello(kHello);
        } catch (...) {
            begin_message(out);
            hello(kInitFailed);
            save_exception(hello, std::current_exception());
            conn.send_message(out);
            // Wait for the pool to stop us: exiting with tasks unread would make the kernel
            // report a reset on the pool's end before this message.
            try {
                for (;;) {
                    std::vector<int> fds;
                    const std::string& msg = conn.receive_message(fds);
                    close_unclaimed(fds);
                    InputArchive in(message_body(msg), fds);
                    std::uint8_t op = 0;
                    in(op);
                    if (op == kStop) return;
                }
            } catch (const std::exception&) {
            }
            return;
        }
        conn.send_message(out);
    }
    ChunkContext ctx(slot.data(), cap);
    for (;;) {
        std::vector<int> fds;
        const std::string* msg = nullptr;
        try {
            const int fd = conn.fileno();
            look_readable(std::span<const int>(&fd, 1));
            msg = &conn.receive_message(fds);
        } catch (const EOFError&) {
            return;  // the pool is gone
        }
        InputArchive in(message_body(*msg), fds);
        std::uint8_t op = 0;
        in(op);
        if (op != kTask) {
            close_unclaimed(fds);
            return;  // kStop
        }
        // A batch of chunks in, one message of results out: the time it took travels back, so
        // that the pool can size the next batch.
        const auto t0 = Clock::now();
        std::uint32_t records = 0;
        in(records);
        const std::size_t at = begin_message(out);
        OutputArchive oa(out);
        oa(kResult, records);
        const std::size_t elapsed_at = out.size();
        oa(std::int64_t{0});
        for (std::uint32_t r = 0; r < records; ++r) {
            std::uint64_t seq = 0;
            bool timed = false;
            in(seq, timed);
            ctx.begin_chunk(seq, timed);
            CodeAddress a;
            in(a);
            const ChunkFn run = decode_function<void(InputArchive&, OutputArchive&, ChunkContext&)>(a);
            oa(seq);
            run(in, oa, ctx);
        }
        const std::int64_t elapsed =
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
        std::memcpy(out.data() + elapsed_at, &elapsed, sizeof elapsed);
        close_unclaimed(fds);
        patch_envelope_fds(out, at, oa.fds().size());
        conn.send_message(out, oa.fds());
    }
}

// What a worker process runs; always sent as a job (a fresh program, or a fork of the pool's
// own fork server), never run in place.
class WorkerTarget final : public Target {
public:
    WorkerTarget(connection::Connection conn, RegionRef slot, std::size_t cap, std::shared_ptr<Target> init)
        : conn_(std::move(conn)), slot_(std::move(slot)), cap_(cap), init_(std::move(init)) {}
    void call() override { throw std::logic_error("mproc: a pool worker runs only as a job"); }
    const char* refusal() const noexcept override { return init_ ? init_->refusal() : nullptr; }
    EntryFn entry() const noexcept override { return &worker_entry; }
    void save(OutputArchive& ar) const override {
        const bool has_init = init_ != nullptr;
        ar(conn_, slot_, static_cast<std::uint64_t>(cap_), has_init);
        if (has_init) {
            ar(encode_function(init_->entry()));
            init_->save(ar);
        }
    }

private:
    connection::Connection conn_;
    RegionRef slot_;
    std::size_t cap_;
    std::shared_ptr<Target> init_;
};

std::atomic<unsigned> worker_counter{0};

std::shared_ptr<const std::vector<int>> own_copies(const std::vector<int>& fds) {
    if (fds.empty()) return nullptr;
    auto* v = new std::vector<int>;
    for (int fd : fds) v->push_back(platform::dup_fd(fd).release());
    return std::shared_ptr<const std::vector<int>>(v, [](const std::vector<int>* p) {
        for (int fd : *p) platform::UniqueFd closer(fd);
        delete p;
    });
}


void fail_items(const std::shared_ptr<JobBase>& job, std::size_t first, std::size_t count,
                const std::exception_ptr& e) {
    for (std::size_t i = 0; i < count; ++i) job->set_error(first + i, e);
}
}  // namespace

// ---------------------------------------------------------------- the process pool

// The lifecycle both pools share: running, then closed (no new calls, though an imap begun
// before may still feed its input), then terminating; and broken, once a worker could not be
// set up.
struct Gate {
    enum class State { Running, Closed, Terminating };
    virtual ~Gate() = default;
    // Tells the pool's own thread(s) that the state or the work changed.
    virtual void wake() noexcept = 0;

    std::mutex mu;
    State state = State::Running;
    std::size_t streams = 0;
    std::exception_ptr broken;

    // Under mu, for a new chunk: null to take it, else the error to fail it with. A new call
    // (not the next chunk of an imap) after close is std::logic_error.
    std::exception_ptr admit_locked(bool stream) const {
        if (broken) return broken;
        if (!stream && state != State::Running) throw_closed();
        if (state == State::Terminating) return terminated_error();
        return nullptr;
    }
    void check_accepting() {
        std::lock_guard lk(mu);
        if (broken) std::rethrow_exception(broken);
        if (state != State::Running) throw_closed();
    }
    void stream_opened() {
        std::lock_guard lk(mu);
        ++streams;
    }
    void stream_closed() {
        std::lock_guard lk(mu);
        --streams;
    }
    void close() {
        std::lock_guard lk(mu);
        if (state == State::Running) state = State::Closed;
    }
    void check_joinable() {
        std::lock_guard lk(mu);
        if (state == State::Running)
            throw std::logic_error("mproc: join() needs close() or terminate() first (Python: ValueError)");
    }
    [[noreturn]] static void throw_closed() {
        throw std::logic_error("mproc: the pool is closed or terminated; it takes no new tasks");
    }
    static std::exception_ptr terminated_error() {
        return std::make_exception_ptr(ProcessError("mproc: the pool was terminated before this task finished"));
    }
};

struct ProcessCore::Impl : Gate {
    struct InFlight {
        Chunk chunk;
        std::uint64_t seq;
    };
    enum class Kill { None, Deadline, Pool, Cancel };
    struct Worker {
        Process proc;
        connection::Connection conn;
        std::uint64_t id = 0;  // stays unique when a replacement reuses the slot
        std::uint32_t slot = 0;
        std::deque<InFlight> inflight;  // sent, in the order the worker runs them
        std::size_t batches_out = 0;    // messages sent whose results have not come back
        bool big_out = false;           // one of them is large
        std::size_t chunks = 0;
        bool hello = false;
        bool stopping = false;
        bool dead = false;
        Kill killed = Kill::None;
        double killed_after = 0;
        std::uint64_t reads = 0;  // messages read from conn, so a round knows if another thread read

        bool usable() const noexcept { return !stopping && !dead && killed == Kill::None; }
    };
    PoolOptions opts;
    std::string method;
    std::shared_ptr<ForkServer> server;
    RegionRef slots;

    platform::UniqueFd wake_fd;
    std::thread thread;
    std::once_flag joined;
    bool stopped = false;  // the dispatcher has shut the workers down
    bool finish_at_exit = false;  // an executor's: its work finishes at exit (under mu)
    // stop_workers(): how the workers are ended, and what the calls they ran fail with
    // (under mu; terminate() kills and fails them with terminated_error()).
    bool stop_signal_term = false;
    std::exception_ptr stop_reason;
    std::size_t helpers = 0;  // threads in round() for a result they wait for (under mu)
    std::vector<int> helper_fds;  // their wake-up eventfds (under mu)

    // Everything below is guarded by mu.
    Deferred deferred;  // job updates to finish once mu is released
    std::uint64_t next_worker_id = 1;
    std::vector<std::unique_ptr<Worker>> workers;
    std::deque<Chunk> queue;
    std::uint64_t next_seq = 1;
    std::string sendbuf;
    // Large item buffers of chunks whose results came back, for the next chunks to reuse: a
    // fresh megabyte is a fresh mmap, faulted in page by page and unmapped when freed, which
    // made every other large map half as fast (under mu).
    std::vector<std::string> spare_buffers;
    static constexpr std::size_t kSpareMin = 64 * 1024;

    // Kept: up to 64 MiB, enough for a map's chunks (Python's default chunksize makes four per
    // worker, all queued at once).
    static constexpr std::size_t kSpareBytes = 64 * 1024 * 1024;
    std::size_t spare_bytes = 0;

    void recycle(std::string&& items) {
        if (items.capacity() < kSpareMin || spare_bytes + items.capacity() > kSpareBytes) return;
        spare_bytes += items.capacity();
        spare_buffers.push_back(std::move(items));
    }
    double item_ns = 0;  // the time one item takes in a worker, a moving average (0: unknown)

    void wake() noexcept override { platform::event_notify(wake_fd.get()); }

    Slot& slot_of(const Worker& w) const { return static_cast<Slot*>(slots.data())[w.slot]; }

    std::unique_ptr<Worker> start_worker(std::uint32_t slot) {
        auto [mine, theirs] = mproc::Pipe(true);
        RegionRef r = slots;
        r.offset = slot * sizeof(Slot);
        static_cast<Slot*>(slots.data())[slot].pos.store(0, std::memory_order_relaxed);
        static_cast<Slot*>(slots.data())[slot].ready.store(0, std::memory_order_relaxed);
        auto target = std::make_unique<WorkerTarget>(std::move(theirs), std::move(r), opts.max_result_bytes,
                                                     opts.initializer.target());
        const char* kind = method == "fork" ? "Fork" : method == "spawn" ? "Spawn" : "ForkServer";
        ProcessOptions po{.name = std::string(kind) + "PoolWorker-" + std::to_string(++worker_counter),
                          .daemon = true,
                          .start_method = method};
        auto w = std::make_unique<Worker>();
        w->id = next_worker_id++;
        w->proc = make_pool_process(std::move(po), std::move(target), server);
        w->conn = std::move(mine);
        w->slot = slot;
        w->conn.set_max_message_size(std::numeric_limits<std::size_t>::max() / 2);
        w->proc.start();
        return w;
    }

    // --- sending ---
    //
    // Chunks travel in batches, one message each way per batch, so that many small chunks do
    // not cost a system call each. A batch is sized to about kBatchWork of work (from the
    // times workers report), split among the idle workers, and capped by bytes. A worker holds
    // at most two batches, so it never waits for the next; a large one (over kBigMessage) goes
    // only to a worker holding nothing, which is therefore reading: with results and tasks
    // both in flight and larger than the sockets' buffers, each side could otherwise block in
    // send while the other does.

    static constexpr double kBatchWork = 200e3;  // ns
    static constexpr std::size_t kMaxBatch = 256, kBatchBytes = 1 << 20;

    std::size_t batch_limit(std::size_t usable) const {
        std::size_t by_time = 1;
        if (item_ns > 0 && !queue.empty()) {
            const double chunk_ns = item_ns * static_cast<double>(std::max<std::size_t>(queue.front().count, 1));
            by_time = static_cast<std::size_t>(std::clamp(kBatchWork / chunk_ns, 1.0, double(kMaxBatch)));
        }
        const std::size_t share = (queue.size() + usable - 1) / std::max<std::size_t>(usable, 1);
        return std::max<std::size_t>(1, std::min(by_time, share));
    }

    void append_record(const Chunk& c, std::uint64_t seq) {
        OutputArchive ar(sendbuf);
        ar(seq, static_cast<bool>(c.timeout));
        ar.saveBinary(c.prefix->data(), c.prefix->size());
        ar(static_cast<std::uint32_t>(c.count), c.fixed);
        ar.saveBinary(c.sizes.data(), c.sizes.size() * sizeof(std::uint32_t));
        // Large item buffers are not copied in: the send takes them from the chunk, which stays
        // (and keeps its buffer) until its results are back.
        if (c.items.size() >= kSpliceMin)
            splices.emplace_back(sendbuf.size(), std::string_view(c.items));
        else
            ar.saveBinary(c.items.data(), c.items.size());
    }

    // Where in sendbuf each large chunk buffer belongs, for the batch being built.
    static constexpr std::size_t kSpliceMin = 16 * 1024;
    std::vector<std::pair<std::size_t, std::string_view>> splices;

    std::size_t batch_bytes() const {
        std::size_t n = sendbuf.size();
        for (auto& sp : splices) n += sp.second.size();
        return n;
    }

    void send_batch(Worker& w, std::span<const int> fds) {
        if (splices.empty()) return w.conn.send_message(sendbuf, fds);
        std::vector<std::string_view> parts;
        std::size_t from = 0;
        for (auto& [at, items] : splices) {
            parts.emplace_back(sendbuf.data() + from, at - from);
            parts.push_back(items);
            from = at;
        }
        parts.emplace_back(sendbuf.data() + from, sendbuf.size() - from);
        w.conn.send_message_parts(parts, fds);
    }

    void dispatch() {
        const auto usable = static_cast<std::size_t>(
            std::count_if(workers.begin(), workers.end(), [](auto& w) { return w->usable(); }));
        for (auto& wp : workers) {
            Worker& w = *wp;
            while (w.usable() && w.batches_out < 2 && !w.big_out) {
                while (!queue.empty() && queue.front().job->finished()) queue.pop_front();
                if (queue.empty()) return;
                if (w.batches_out > 0 && queue.front().items.size() > kBigMessage) break;
                std::size_t limit = batch_limit(usable);
                if (opts.maxtasksperchild) limit = std::min(limit, *opts.maxtasksperchild - w.chunks);
                const std::size_t at = begin_message(sendbuf);
                splices.clear();
                OutputArchive head(sendbuf);
                head(kTask);
                const std::size_t count_at = sendbuf.size();
                head(std::uint32_t{0});
                std::uint32_t count = 0;
                std::span<const int> fds;
                while (!queue.empty() && count < limit) {
                    Chunk& c = queue.front();
                    if (c.job->finished()) {
                        queue.pop_front();
                        continue;
                    }
                    // An executor's future goes alone, and only to an idle worker: once sent it
                    // is running and cannot be cancelled (Python marks running what its call
                    // queue holds, at most max_workers + 1), so it waits here, pending and
                    // cancellable, rather than behind another task in a busy worker's pipe.
                    if (c.job->executor_future() && (count > 0 || w.batches_out > 0)) break;
                    // A chunk whose items carry descriptors travels alone: its archive numbers
                    // them from 0.
                    if (count > 0 && (c.fds || batch_bytes() + c.items.size() > kBatchBytes)) break;
                    const std::uint64_t seq = next_seq++;
                    append_record(c, seq);
                    c.job->mark_running();
                    if (c.fds) fds = *c.fds;
                    w.inflight.push_back(InFlight{std::move(c), seq});
                    queue.pop_front();
                    ++count;
                    if (!fds.empty() || w.inflight.back().chunk.job->executor_future()) break;
                }
                if (count == 0) {
                    if (queue.empty()) return;
                    break;  // the next chunk waits for an idle worker: perhaps another one
                }
                std::memcpy(sendbuf.data() + count_at, &count, sizeof count);
                patch_envelope_fds(sendbuf, at, fds.size());
                ++w.batches_out;
                w.big_out = batch_bytes() > kBigMessage;
                w.chunks += count;
                try {
                    send_batch(w, fds);
                } catch (const std::exception&) {
                    w.dead = true;  // it is gone; its sentinel will say how, and on_death
                    break;          // will run its chunks again
                }
                if (opts.maxtasksperchild && w.chunks >= *opts.maxtasksperchild) stop_worker(w);
            }
        }
    }

    void stop_worker(Worker& w) {
        if (w.stopping || w.dead) return;
        w.stopping = true;
        std::string stop;
        begin_message(stop);
        OutputArchive ar(stop);
        ar(kStop);
        try {
            w.conn.send_message(stop);
        } catch (const std::exception&) {
            w.dead = true;
        }
    }

    // --- receiving ---

    // Every message waiting on w's connection, or (all = false) the first: a poll said it was
    // readable and will say so again while more wait. Another thread may have read it first,
    // hence the check before reading.
    // known_readable: the caller saw it readable, and nobody has read since.
    void read_messages(Worker& w, bool all = true, bool known_readable = false) {
        try {
            for (bool more = true; more && (std::exchange(known_readable, false) || w.conn.poll(Timeout(0.0)));
                 more = all) {
                ++w.reads;
                std::vector<int> fds;
                const std::string& msg = w.conn.receive_message(fds);
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
    }

    void handle_message(Worker& w, const std::string& msg, std::vector<int>& fds) {
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
        if (items > 0) {
            const double per = static_cast<double>(elapsed) / static_cast<double>(items);
            item_ns = item_ns > 0 ? 0.7 * item_ns + 0.3 * per : per;
        }
        if (w.batches_out > 0) --w.batches_out;
        w.big_out = false;
        for (std::uint32_t r = 0; r < records; ++r) {
            std::uint64_t seq = 0;
            ar(seq);
            if (w.inflight.empty() || w.inflight.front().seq != seq)
                throw SerializationError("mproc: a worker answered a chunk it was not given");
            InFlight f = std::move(w.inflight.front());
            w.inflight.pop_front();
            std::uint32_t count = 0;
            try {
                ar(count);
                f.chunk.job->deliver(f.chunk.first, count, ar, deferred);
                recycle(std::move(f.chunk.items));
            } catch (...) {
                // A result that does not decode fails its item and the rest of the batch.
                const std::exception_ptr e = std::current_exception();
                fail_later(f.chunk, e);
                for (auto& g : w.inflight) fail_later(g.chunk, e);
                w.inflight.clear();
                return;
            }
        }
    }

    // --- deaths, deadlines ---

    static Chunk slice(const Chunk& c, std::size_t from, std::size_t to) {
        Chunk s;
        s.job = c.job;
        s.first = c.first + from;
        s.count = to - from;
        s.prefix = c.prefix;
        s.fds = c.fds;
        s.timeout = c.timeout;
        s.fixed = c.fixed;
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

    // Which of w's chunks the worker is running, and which item of it; empty when it is not
    // running any of them (between batches).
    std::optional<std::pair<std::size_t, std::size_t>> running(const Worker& w) const {
        const std::uint64_t pos = slot_of(w).pos.load(std::memory_order_acquire);
        for (std::size_t k = 0; k < w.inflight.size(); ++k)
            if ((pos >> 32) == (w.inflight[k].seq & 0xffffffffu)) {
                const std::size_t item = pos & 0xffffffffu;
                if (item >= w.inflight[k].chunk.count) return std::nullopt;
                return std::pair{k, item};
            }
        return std::nullopt;
    }

    void on_death(std::size_t index) {
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
        for (auto it = again.rbegin(); it != again.rend(); ++it) queue.push_front(std::move(*it));
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

    // Kills workers whose running item is past its deadline; returns when to look again.
    platform::Deadline enforce_deadlines() {
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
        return platform::Deadline::after(Timeout(std::chrono::duration<double>(*next - now)));
    }

    // --- failure of everything ---

    void fail_later(const Chunk& c, const std::exception_ptr& e) {
        for (std::size_t i = 0; i < c.count; ++i) c.job->set_error(c.first + i, e, deferred);
    }

    void make_broken(std::exception_ptr e) {
        if (broken) return;
        broken = e;
        fail_queued();
        for (auto& wp : workers) {
            for (auto& f : wp->inflight) fail_later(f.chunk, e);
            wp->inflight.clear();
            stop_worker(*wp);  // a broken pool runs nothing more; the workers may go
        }
    }

    void fail_queued() {
        for (auto& c : queue) fail_later(c, broken);
        queue.clear();
    }

    // Runs the deferred job updates without the lock (they may run callbacks that submit).
    void flush(std::unique_lock<std::mutex>& lk) {
        while (!deferred.empty()) {
            Deferred now;
            now.swap(deferred);
            lk.unlock();
            for (auto& f : now) f();
            lk.lock();
        }
    }

    // --- the loop ---

    // One round, with mu held on entry and exit: send what can go, wait (without the lock)
    // for a worker's message or death, the deadline, or `extra` (the dispatcher's wake-up, or
    // a waiting thread's job), and handle what came.
    //
    // While a thread waiting for a result runs rounds (a helper), the dispatcher leaves the
    // workers' connections to it and wakes only for deaths, its wake-up, and every kBlindCheck
    // to look again: else both would wake for every result and fight over the mutex, which
    // costs more than the hand-off the helper saves. A result nobody waits for is therefore
    // read at most kBlindCheck after the last helper left.
    static constexpr double kBlindCheck = 0.002;  // s

    void round(std::unique_lock<std::mutex>& lk, int extra, platform::Deadline until) {
        dispatch();
        flush(lk);
        const platform::Deadline due = enforce_deadlines();
        const bool blind = extra == wake_fd.get() && helpers > 0;
        if (blind) until = platform::Deadline::after(Timeout(kBlindCheck));
        std::vector<int> fds{extra};
        std::vector<std::uint64_t> ids, reads;
        for (auto& w : workers) {
            fds.push_back(blind ? -1 : w->conn.fileno());
            fds.push_back(w->proc.sentinel());
            ids.push_back(w->id);
            reads.push_back(w->reads);
        }
        lk.unlock();
        // A waiting thread looks before it sleeps (see kLookBeforeSleep); the dispatcher sleeps.
        std::vector<std::size_t> ready;
        if (extra != wake_fd.get()) ready = look_readable(fds);
        if (ready.empty()) ready = platform::wait_any_readable(fds, earlier(due, until));
        lk.lock();
        std::vector<std::uint64_t> died;
        for (std::size_t r : ready) {
            if (r == 0) {
                platform::event_drain(extra);  // the dispatcher's wake-up, or the waiter's
                continue;
            }
            const std::uint64_t id = ids[(r - 1) / 2];
            Worker* w = find(id);
            if (!w) continue;  // another thread handled its death
            if ((r - 1) % 2 == 0)
                // Readable when polled; unless another thread read meanwhile, it still is, and
                // the poll that read_messages would make first can be saved.
                read_messages(*w, false, w->reads == reads[(r - 1) / 2]);
            else
                died.push_back(id);
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

    static const platform::Deadline& earlier(const platform::Deadline& a, const platform::Deadline& b) {
        if (a.is_never()) return b;
        if (b.is_never()) return a;
        return *a.remaining() < *b.remaining() ? a : b;
    }

    Worker* find(std::uint64_t id) {
        for (auto& w : workers)
            if (w->id == id) return w.get();
        return nullptr;
    }

    // A thread waiting for job: one round for it. False once the pool has stopped.
    bool help(JobBase& job, const Timeout& timeout) {
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
            round(lk, fd, platform::Deadline::after(timeout));
            std::erase(helper_fds, fd);
            --helpers;
        }
        job.unwatch(fd);
        return true;
    }

    static bool pump(const std::shared_ptr<void>& core, JobBase& job, const Timeout& timeout) {
        return static_cast<Impl*>(core.get())->help(job, timeout);
    }

    void run() {
        std::unique_lock lk(mu);
        for (;;) {
            if (state == State::Terminating) return shutdown(lk, true);
            if (broken) fail_queued();
            dispatch();
            flush(lk);
            const bool idle = std::all_of(workers.begin(), workers.end(), [](auto& w) { return w->inflight.empty(); });
            if (state == State::Closed && streams == 0 && queue.empty() && idle) return shutdown(lk, false);
            round(lk, wake_fd.get(), platform::Deadline::never());
        }
    }

    void shutdown(std::unique_lock<std::mutex>& lk, bool now) {
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
        for (auto& c : queue) fail_later(c, e);
        queue.clear();
        stopped = true;
        flush(lk);
        if (server) server->stop();
    }
};

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
            const bool first_in_line = impl_->queue.empty();
            impl_->queue.push_back(std::move(c));
            if (first_in_line) {
                impl_->dispatch();
                queued = !impl_->queue.empty();
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

std::string ProcessCore::take_buffer(std::size_t size) {
    std::string b;
    if (size >= Impl::kSpareMin) {
        std::lock_guard lk(impl_->mu);
        if (!impl_->spare_buffers.empty()) {
            b = std::move(impl_->spare_buffers.back());
            impl_->spare_buffers.pop_back();
            impl_->spare_bytes -= b.capacity();
        }
    }
    b.resize(size);
    return b;
}

void ProcessCore::adopt(JobBase& job) const { job.set_pump(impl_, &Impl::pump); }

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
    const auto before = impl_->queue.size();
    std::erase_if(impl_->queue, [&](const Chunk& c) { return c.job.get() == &job; });
    return impl_->queue.size() != before;
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
        for (auto& c : impl_->queue)
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

void CoreBase::check_accepting() const { gate_->check_accepting(); }
void CoreBase::stream_opened() { gate_->stream_opened(); }

void CoreBase::stream_closed() {
    gate_->stream_closed();
    gate_->wake();
}

void CoreBase::close() {
    gate_->close();
    gate_->wake();
}

// ---------------------------------------------------------------- the thread pool

namespace {
// A pool call's chunk in a thread pool's queue.
class ChunkTask final : public TaskNode {
public:
    ChunkTask(std::function<void()> run, std::shared_ptr<JobBase> job, std::size_t first, std::size_t count)
        : run_(std::move(run)), job_(std::move(job)), first_(first), count_(count) {}
    void run() noexcept override { run_(); }
    void cancel_pending() noexcept override {
        if (!job_->started()) job_->cancel();
    }
    void fail(const std::exception_ptr& e) noexcept override { fail_items(job_, first_, count_, e); }

private:
    std::function<void()> run_;
    std::shared_ptr<JobBase> job_;
    std::size_t first_, count_;
};
}  // namespace

namespace {
// The busy count of the on-demand pool whose task this thread is running (task_finishing).
thread_local std::atomic<std::size_t>* t_busy = nullptr;
}  // namespace

void task_finishing() noexcept {
    if (t_busy) std::exchange(t_busy, nullptr)->fetch_sub(1, std::memory_order_release);
}

struct ThreadCore::Impl : Gate {
    using Queue = std::deque<std::shared_ptr<TaskNode>>;
    PoolOptions opts;
    std::condition_variable cv;   // with mu
    Queue tasks;                  // guarded by mu
    std::deque<std::thread> threads;
    std::size_t idle = 0;  // threads asleep on cv (under mu)
    std::mutex join_mu;
    // Wake-ups sent and not yet taken up (under mu). A sleeper takes a few microseconds to
    // run after notify_one, during which a submitter may queue many tasks: one wake-up per
    // sleeper is enough, and each more was a wasted system call (and a second thread woken
    // for a task the first would take). Measured with 2 threads, submit then result of 500k
    // trivial tasks: 2.4M/s before, 5.6-5.8M/s after. (Threads that spin or yield a while
    // before sleeping were tried too, and were slower: on 2 CPUs they take the submitter's.)
    std::size_t wakes_pending = 0;

    // Under mu: whether a submitter (or a worker leaving work behind) should wake a sleeper.
    bool claim_wake() {
        if (idle <= wakes_pending || tasks.empty()) return false;
        ++wakes_pending;
        return true;
    }

    void wake() noexcept override { cv.notify_all(); }

    std::size_t started = 0;
    // Start::OnDemand: threads are started as submissions need them, up to max_threads.
    bool on_demand = false;
    std::size_t max_threads = 0;
    std::size_t live = 0;  // threads started whose work() has not returned (under mu)
    // Threads holding a task: taken from the queue, outcome not yet published (task_finishing).
    std::atomic<std::size_t> busy{0};

    void start_thread() {
        const std::string name = (opts.thread_name_prefix.empty() ? std::string("ThreadPool") : opts.thread_name_prefix) +
                                  "_" + std::to_string(started++);
        threads.emplace_back([this, name] {
            platform::set_thread_name(name);
            threading::detail::adopt_current_thread(name);
            work();
            std::lock_guard lk(mu);
            --live;
        });
        ++live;  // under mu, which the thread takes before it counts itself out
    }

    // Under mu, after a task was queued: Python's _adjust_thread_count. Every free thread (asleep,
    // or about to look at the queue) takes one queued task; a task none will take gets a new
    // thread. A thread that frees up meanwhile only makes one more than needed, never one less.
    // A thread that cannot start when none runs: the task is taken back and the error thrown.
    void start_on_demand() {
        if (!on_demand || live >= max_threads || state == State::Terminating || broken) return;
        if (tasks.size() + busy.load(std::memory_order_acquire) <= live) return;
        try {
            start_thread();
        } catch (...) {
            if (live > 0) return;  // the threads there are will run it, later
            tasks.pop_back();      // nothing would: the submitter hears why, and keeps its task
            throw;
        }
    }

    // Under mu: this thread took a task (counted busy until task_finishing).
    void hold_task() {
        busy.fetch_add(1, std::memory_order_relaxed);
        t_busy = &busy;
    }

    // Fails what is queued; the caller has released mu (failing runs completions and callbacks).
    static void fail_all(Queue&& q, const std::exception_ptr& e) {
        for (auto& t : q) t->fail(e);
    }

    void work() {
        if (opts.initializer) {
            try {
                opts.initializer.run_here();
            } catch (...) {
                Queue dropped;
                std::exception_ptr why;
                {
                    std::lock_guard lk(mu);
                    if (!broken)
                        broken = std::make_exception_ptr(futures::BrokenThreadPool(
                            "mproc: the pool's initializer failed in a worker thread: " +
                            describe_exception(std::current_exception())));
                    dropped.swap(tasks);
                    why = broken;
                }
                cv.notify_all();
                fail_all(std::move(dropped), why);
                return;
            }
        }
        std::size_t done = 0;
        for (;;) {
            std::shared_ptr<TaskNode> t;
            bool more = false;
            {
                std::unique_lock lk(mu);
                auto ready = [&] {
                    return !tasks.empty() || state == State::Terminating || broken ||
                           (state == State::Closed && streams == 0);
                };
                if (!ready()) {
                    // Each wake-up takes back the one it may have been: one that finds the work
                    // gone (a busy thread took it) sleeps again, and a count left standing made
                    // claim_wake() believe a wake-up under way, so later work woke nobody (a
                    // sleeper stayed asleep with tasks queued).
                    ++idle;
                    do {
                        cv.wait(lk);
                        if (wakes_pending > 0) --wakes_pending;
                    } while (!ready());
                    --idle;
                }
                if (tasks.empty() || state == State::Terminating || broken) return;
                t = std::move(tasks.front());
                tasks.pop_front();
                if (on_demand) hold_task();
                // More work than this thread: pass the wake-up on, so a burst that arrived
                // while one wake-up was under way does not run on one thread.
                more = claim_wake();
            }
            if (more) cv.notify_one();
            t->run();
            task_finishing();  // when run() did not
            t.reset();  // before the next wait: its result and arguments go now
            if (opts.maxtasksperchild && ++done >= *opts.maxtasksperchild) {
                std::lock_guard lk(mu);
                if (state != State::Terminating) start_thread();  // this one retires
                return;
            }
        }
    }
};

ThreadCore::ThreadCore(const PoolOptions& options, Start start) : impl_(std::make_shared<Impl>()) {
    gate_ = impl_;
    const int p = options.processes.value_or(process_cpu_count());
    if (p < 1) throw std::invalid_argument("mproc: a pool needs at least one thread (processes = " + std::to_string(p) + ")");
    if (options.task_timeout)
        throw std::invalid_argument("mproc: a thread cannot be stopped from outside, so a ThreadPool task cannot have a deadline");
    processes_ = static_cast<std::size_t>(p);
    impl_->opts = options;
    impl_->max_threads = processes_;
    impl_->on_demand = start == Start::OnDemand;
    if (impl_->on_demand) return;
    std::lock_guard lk(impl_->mu);
    for (int i = 0; i < p; ++i) impl_->start_thread();
}

ThreadCore::~ThreadCore() { terminate(); }

void ThreadCore::submit(std::function<void()> task, std::shared_ptr<JobBase> job, std::size_t first,
                        std::size_t count, bool stream) {
    std::exception_ptr refused;
    bool wake = false;
    {
        std::lock_guard lk(impl_->mu);
        refused = impl_->admit_locked(stream);
        if (!refused) {
            impl_->tasks.push_back(std::make_shared<ChunkTask>(std::move(task), job, first, count));
            impl_->start_on_demand();
        }
        // Busy threads take the next task without a wake-up (a system call each).
        wake = impl_->claim_wake();
    }
    if (refused) return fail_items(job, first, count, refused);
    if (wake) impl_->cv.notify_one();
}

void ThreadCore::submit_task(std::shared_ptr<TaskNode> task) {
    std::exception_ptr refused;
    bool wake = false;
    {
        std::lock_guard lk(impl_->mu);
        refused = impl_->admit_locked(false);
        if (!refused) {
            impl_->tasks.push_back(task);
            impl_->start_on_demand();
        }
        wake = impl_->claim_wake();
    }
    if (refused) return task->fail(refused);
    if (wake) impl_->cv.notify_one();
}

void ThreadCore::cancel_pending() {
    Impl::Queue queued;
    {
        std::lock_guard lk(impl_->mu);
        queued = impl_->tasks;
    }
    for (auto& t : queued) t->cancel_pending();
}

void ThreadCore::terminate() {
    Impl::Queue dropped;
    {
        std::lock_guard lk(impl_->mu);
        impl_->state = Impl::State::Terminating;
        dropped.swap(impl_->tasks);
    }
    impl_->cv.notify_all();
    Impl::fail_all(std::move(dropped), Gate::terminated_error());
    join();
}

void ThreadCore::join() {
    impl_->check_joinable();
    std::lock_guard jl(impl_->join_mu);
    for (;;) {
        std::thread t;
        {
            std::lock_guard lk(impl_->mu);
            if (impl_->threads.empty()) return;
            t = std::move(impl_->threads.front());
            impl_->threads.pop_front();
        }
        if (t.get_id() == std::this_thread::get_id()) {
            t.detach();  // join() from one of its own tasks: it ends when the task returns
            continue;
        }
        t.join();
    }
}

}  // namespace mproc::detail::pool
