// mproc/detail/pool_core.hpp: what a pool runs on (not API).
//
// A pool's public face (BasicPool: Python's Pool and ThreadPool) and the executors
// (ProcessPoolExecutor, ThreadPoolExecutor) are written once, over a core that runs chunks of
// items of pool calls (Jobs, detail/pool_job.hpp). A core is anything that satisfies PoolCore:
// ProcessCore (worker processes, detail/process_core.hpp), ThreadCore (threads of this
// process, detail/thread_core.hpp) and MpiCore (the worker ranks of an MPI job,
// detail/mpi_core.hpp). The concept is the contract; this header says what each member must do.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "mproc/detail/pool_job.hpp"
#include "mproc/detail/pool_wire.hpp"
#include "mproc/detail/timeout.hpp"
#include "mproc/process.hpp"

namespace mproc::detail::pool {

// A chunk of items for a worker process, serialized.
struct Chunk {
    // Out of line (src/pool/process_core.cpp): not compiled in every TU that makes a pool call.
    Chunk();
    Chunk(Chunk&&) noexcept;
    Chunk& operator=(Chunk&&) noexcept;
    ~Chunk();

    std::shared_ptr<JobBase> job;
    std::size_t first = 0;  // index in the job of the first item
    std::size_t count = 0;
    std::shared_ptr<const std::string> prefix;  // the chunk function's address and the callable
    std::uint32_t fixed = 0;                    // every item's size, when they are all alike
    std::vector<std::uint32_t> sizes;           // else each item's
    std::string items;
    std::shared_ptr<const std::vector<int>> fds;  // descriptors the items carry (owned copies)
    Timeout timeout;
    // Each item is a task of its own (a call with chunksize 1), the chunk only their carrier:
    // the pool sends its items in batches as it would send as many chunks of one (it splits
    // the chunk to fill a batch), counts each as a task (maxtasksperchild), and each item ends
    // on its own, as every chunk's items do (a result or an exception each; a worker's death
    // fails the item it ran). One Chunk for up to ProcessCore::kUnits items, not one each: a
    // chunk's own bookkeeping, in the caller and the pool's thread, was most of a chunksize-1
    // map's cost.
    bool units = false;
    // Long runs of the items' bytes that are not in `items` but where they were (the call's
    // argument tuples keep them): for a core that sends from several places at once (MpiCore).
    // The items' bytes are then `items` with each run inserted at its place.
    std::shared_ptr<const Loan> loan;
    // The tasks it counts for.
    std::size_t tasks() const noexcept { return units ? count : 1; }
};

// What every chunk of a call to worker processes starts with: the chunk function's address
// (run_chunk<F, Tuple, R>), then the callable. Made once per call.
template <class R, class F, class Tuple>
std::shared_ptr<const std::string> chunk_prefix(const F& f) {
    std::string prefix;
    OutputArchive ar(prefix);
    save_function(ar, static_cast<ChunkFn>(&run_chunk<F, Tuple, R>));
    save_callable(ar, f);
    return std::make_shared<const std::string>(std::move(prefix));
}

// A chunk whose items are all of one (non-zero) size says so (Chunk::fixed) in place of each
// item's size.
inline void settle_sizes(Chunk& c) {
    if (c.sizes.empty() || c.sizes.front() == 0) return;
    for (std::uint32_t s : c.sizes)
        if (s != c.sizes.front()) return;
    c.fixed = c.sizes.front();
    c.sizes.clear();
}

// The shortest string or vector a lending encode leaves where it is: sending it as a message of
// its own costs a few microseconds more; copying 256 KiB costs about 25.
constexpr std::size_t kLendMin = std::size_t{256} << 10;

// make_chunk's items one by one, through an archive each (not packed). With a loan, strings
// and vectors of at least kLendMin bytes are lent to it (OutputArchive::lend_to), not copied.
template <class Tuple>
std::optional<Chunk> encode_items(Chunk c, std::span<Tuple> items, std::vector<int>& fds,
                                  std::vector<Lent>* loan = nullptr) {
    OutputArchive ar(c.items);
    if (loan) ar.lend_to(loan, kLendMin);
    c.sizes.reserve(items.size());
    try {
        for (auto& t : items) {
            const std::size_t before = ar.written();
            ar(t);
            c.sizes.push_back(static_cast<std::uint32_t>(ar.written() - before));
        }
    } catch (...) {
        const std::exception_ptr e = std::current_exception();
        for (std::size_t i = 0; i < c.count; ++i) c.job->set_error(c.first + i, e);
        return std::nullopt;
    }
    settle_sizes(c);
    fds = ar.fds();
    return c;
}

// Items whose arguments travel packed (packed_args), seen without their type: pack(dst, item)
// writes item i (at data + i * stride) as `size` bytes.
struct PackedItems {
    const void* data = nullptr;
    std::size_t count = 0, stride = 0, size = 0;
    void (*pack)(char* dst, const void* item) = nullptr;
};
template <class Tuple>
PackedItems packed_items(std::span<Tuple> items) {
    return {items.data(), items.size(), sizeof(Tuple), packed_args<Tuple>::size,
            [](char* dst, const void* t) { pack_args(dst, *static_cast<const Tuple*>(t)); }};
}
// A chunk of job's items first... without its items yet. src/pool/process_core.cpp.
Chunk chunk_head(std::shared_ptr<JobBase> job, std::size_t first, std::shared_ptr<const std::string> prefix,
                 std::size_t count, const Timeout& timeout);
// A chunk of job's items first... whose arguments travel packed: items packed into buffer (of
// items.count * items.size bytes). src/pool/process_core.cpp.
Chunk packed_chunk(std::shared_ptr<JobBase> job, std::size_t first, std::shared_ptr<const std::string> prefix,
                   const PackedItems& items, const Timeout& timeout, std::string buffer);

// A chunk of items [first, first + items.size()) of job for worker processes: the call's
// prefix, the items serialized (c.items, and c.fixed or c.sizes), its deadline; the
// descriptors they carry go to fds, and take_buffer(size) gives the buffer of packed items.
// Python's pools pickle a task in a feeder thread and set what that raises on the task's
// future or result (the pool goes on): when an item cannot be serialized, the chunk's items
// fail with that error, as it is, on job, and this returns nothing. With a loan, long strings
// and vectors are lent, not copied (encode_items): the caller then keeps the items alive.
template <class Tuple, class TakeBuffer>
std::optional<Chunk> make_chunk(std::shared_ptr<JobBase> job, std::size_t first, std::shared_ptr<const std::string> prefix,
                                std::span<Tuple> items, const Timeout& timeout, std::vector<int>& fds,
                                TakeBuffer&& take_buffer, std::vector<Lent>* loan = nullptr) {
    if constexpr (packed_args<Tuple>::value) {
        return packed_chunk(std::move(job), first, std::move(prefix), packed_items(items), timeout,
                            take_buffer(items.size() * packed_args<Tuple>::size));
    } else {
        return encode_items(chunk_head(std::move(job), first, std::move(prefix), items.size(), timeout), items, fds,
                            loan);
    }
}

// What the process and the thread pool share: the lifecycle (pool.cpp's Gate).
struct Gate;
class CoreBase {
public:
    std::size_t processes() const noexcept { return processes_; }
    // A lazily fed stream (imap) keeps the pool going after close() until it ends.
    void stream_opened();
    void stream_closed();
    // std::logic_error after close or terminate; the breaking error once broken.
    void check_accepting() const;
    void close();

protected:
    CoreBase() = default;
    ~CoreBase() = default;
    // A core that runs on another's workers (MpiCore without worker ranks) shares its lifecycle.
    void share_gate(const CoreBase& other) {
        gate_ = other.gate_;
        processes_ = other.processes_;
    }
    std::size_t processes_ = 0;
    std::shared_ptr<Gate> gate_;
};

// A unit of work in a thread pool's queue: a chunk of a pool call, or one executor task.
class TaskNode {
public:
    virtual ~TaskNode() = default;
    // In a worker thread.
    virtual void run() noexcept = 0;
    // shutdown(cancel_futures = true): cancels the work unless it has started.
    virtual void cancel_pending() noexcept = 0;
    // The pool stops (terminated, or broken by its initializer) before the work ran.
    virtual void fail(const std::exception_ptr& e) noexcept = 0;
};

// Called by a TaskNode's run() in a worker thread just before it publishes its outcome: the
// thread is free for the next task from then on, and a pool that starts threads on demand
// counts it free, so a submission that the outcome prompts reuses it instead of starting
// another (a task that does not call it counts free once its run() returns).
void task_finishing() noexcept;

namespace probe {
// A call of the simplest shape, to state the template members of PoolCore with.
struct Fn {
    int operator()(int x) const { return x; }
};
using Args = std::tuple<int>;
}  // namespace probe

// The core of a pool. Every member is called with no lock of the caller's held; none blocks
// except terminate() and join() (and stop_workers), which wait for the core's threads or
// processes to end.
//
//   c.processes()          how many workers run tasks side by side (Python: _processes).
//   c.check_accepting()    throws std::logic_error after close()/terminate(), the breaking
//                          error once broken (e.g. futures::BrokenProcessPool); else nothing.
//   c.close()              no new calls; what was submitted finishes; an open stream (imap)
//                          may still feed its input.
//   c.stream_opened()/stream_closed()   an imap's lazily fed input keeps the core accepting
//                          its chunks after close() until it ends.
//   c.prepare<R, F, Tuple>(f)  once per call: what every chunk of the call needs to run f
//                          (a serialized prefix for processes; f itself for threads).
//   c.submit_items<R>(job, first, prepared, span<Tuple> items, timeout, stream)
//                          queues items [first, first + n) of job; each ends, in time, with a
//                          value or an exception set on job (never thrown here: a chunk that
//                          cannot be sent or run fails its items). A timeout the core cannot
//                          enforce is std::invalid_argument. The items are the caller's own
//                          copies, not used after: the core may move from them.
//   c.adopt(job)           a new call's job, before its first chunk: the core may let a thread
//                          that waits for it do the core's work (ProcessCore's pump).
//   c.stop(job)            kills what runs a chunk of job, where the core can; true if it did.
//   C::can_stop_running    whether stop() can stop a running task (a thread cannot be killed):
//                          the executors' terminate() and task deadlines depend on it.
//   C::crosses_processes   whether tasks, arguments and results go to another process (and
//                          so must be serializable: checked at compile time at every call).
//   c.cancel_pending()     cancels every call none of whose chunks has started.
//   c.terminate()          stops at once: unfinished tasks fail (ProcessError); blocks until
//                          the core's workers are gone.
//   c.join()               after close() or terminate() (else std::logic_error): blocks until
//                          everything submitted has ended and the workers are gone.
template <class C>
concept PoolCore = requires(C& c, const C& cc, std::shared_ptr<Job<int>> job, JobBase& base,
                            std::span<probe::Args> items, const Timeout& timeout) {
    { cc.processes() } -> std::same_as<std::size_t>;
    cc.check_accepting();
    c.close();
    c.stream_opened();
    c.stream_closed();
    c.template submit_items<int>(job, std::size_t{0}, cc.template prepare<int, probe::Fn, probe::Args>(probe::Fn{}),
                                 items, timeout, true);
    cc.adopt(base);
    { c.stop(base) } -> std::same_as<bool>;
    { C::can_stop_running } -> std::convertible_to<bool>;
    { C::crosses_processes } -> std::convertible_to<bool>;
    c.cancel_pending();
    c.terminate();
    c.join();
};

// What an executor needs of its core beside PoolCore: one task queued with no pool call around
// it (ThreadCore), or taking a pending call out of the queue and stopping its workers
// (ProcessCore). Each executor asks for the part it uses.
template <class C>
concept TaskQueueCore = PoolCore<C> && requires(C& c, std::shared_ptr<TaskNode> task) { c.submit_task(task); };
template <class C>
concept StoppableCore = PoolCore<C> && C::can_stop_running && requires(C& c, const JobBase& job, bool kill) {
    { c.unqueue(job) } -> std::same_as<bool>;
    c.stop_workers(kill);
    c.set_finish_at_exit();
};

}  // namespace mproc::detail::pool
