// mproc/detail/pool_job.hpp: the result side of a pool call (not API).
//
// A pool call (apply_async, map_async, imap, ...) is one Job: items numbered from 0, each of
// which ends with a value or an exception, in any order and from any thread (the process
// pool's dispatcher thread, or a thread pool's workers). What the caller sees depends on the
// mode: one value (apply), the list (map: complete when every item is in, or failed as soon as
// one item fails, as Python's MapResult), or a stream (imap: in input order, or in completion
// order for imap_unordered; an item's exception is thrown when the iteration reaches it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/detail/archive.hpp"
#include "mproc/detail/deadline.hpp"
#include "mproc/detail/pool_wire.hpp"
#include "mproc/detail/progress_bar.hpp"
#include "mproc/detail/exceptions.hpp"
#include "mproc/detail/timeout.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail::pool {

enum class Mode { Single, List, Ordered, Unordered };


// A hint that [p, p + bytes) will be used whole: transparent huge pages where the system
// allows them (the 2 MiB-aligned part of a large block; nothing for small ones). pool.cpp.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;

// Runs a user callback, reporting (never propagating) what it throws: it runs on a pool's
// own thread, where an exception would have nowhere to go. Python prints the traceback too.
void run_callback(const std::function<void()>& f) noexcept;

// What a call's completion still has to do (run its callback, wake its waiters), handed back
// to a caller that holds a lock user code must not run under.
using Deferred = std::vector<std::function<void()>>;
// Runs what `deferred` (guarded by lk's mutex, held on entry and on return) holds, with the
// mutex released, until a round leaves nothing new in it. jobs.cpp.
void run_deferred(std::unique_lock<std::mutex>& lk, Deferred& deferred);

class JobBase : public std::enable_shared_from_this<JobBase> {
public:
    virtual ~JobBase();
    // The worker's results for items [first, first + count), as run_chunk wrote them; when the
    // call completes, its callback and wake-up go to `later`.
    virtual void deliver(std::size_t first, std::uint32_t count, InputArchive& ar, Deferred& later) = 0;
    virtual void set_error(std::size_t index, std::exception_ptr e, Deferred& later) = 0;
    // Ends the call as cancelled (futures::CancelledError) unless it has ended already; true
    // when it is cancelled.
    virtual bool cancel() = 0;
    void set_error(std::size_t index, std::exception_ptr e) {
        Deferred later;
        set_error(index, std::move(e), later);
        for (auto& f : later) f();
    }
    // True once no more results are wanted (the call completed or failed, or its iterator was
    // dropped): the pool drops its chunks that have not started.
    bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
    // Set by the pool when a chunk of the call goes to a worker (Python: a running future).
    void mark_running() noexcept { running_.store(true, std::memory_order_relaxed); }
    bool started() const noexcept { return running_.load(std::memory_order_relaxed); }
    // An executor's future (set before it is submitted): Python's semantics for running and
    // cancel. A process pool sends such a call to a worker only while fewer than
    // max_workers + 1 of them are out (Python's call queue), and marks it running as it sends
    // it; until then it is pending, and cancel() takes it out of the queue.
    void set_executor_future() noexcept { executor_future_ = true; }
    bool executor_future() const noexcept { return executor_future_; }

    // A process pool lets a thread waiting for a call read the workers' results itself, one
    // hand-off fewer than being woken by the pool's dispatcher: pump runs one round of the
    // pool's loop for that thread, returning when something happened, the job completed
    // (event_fd turns readable) or the timeout passed; false when the pool cannot help.
    using Pump = bool (*)(const std::shared_ptr<void>& core, JobBase& job, const Timeout& timeout);
    void set_pump(std::weak_ptr<void> core, Pump pump) {
        core_ = std::move(core);
        pump_ = pump;
    }
    // A waiting thread's eventfd, to be written when the call completes (by another thread).
    void watch(int fd);
    void unwatch(int fd) noexcept;

protected:
    void signal_completion() noexcept;

    std::atomic<bool> finished_{false};
    std::atomic<bool> running_{false};
    bool executor_future_ = false;
    std::weak_ptr<void> core_;
    Pump pump_ = nullptr;

private:
    std::mutex event_mu_;
    std::vector<int> watchers_;
};

// A pool call's state, whatever its result type: the counting, the completion, the waiting,
// the callbacks and cancel. Out of line (src/pool/jobs.cpp): compiled once, not in every
// translation unit that makes a pool call (issue 18: a Pool::map TU's compile time). Job<R>
// adds the typed storage of the values.
class CallJob : public JobBase {
public:
    void set_error_callback(std::function<void(std::exception_ptr)> on_error) { on_error_ = std::move(on_error); }
    void set_progress(std::unique_ptr<ProgressBar> bar);

    // --- the caller's side ---

    // Waits until the call is complete (Single, List) or until the deadline.
    bool wait(const Timeout& timeout);
    // Waits until the call is complete, then throws its exception if it failed.
    void wait_done();
    bool ready();
    // Single/List, once complete.
    std::exception_ptr error();
    // Runs f once the call is complete: now, in this thread, when it already is (Python:
    // Future.add_done_callback).
    void add_done_callback(std::function<void()> f);
    bool cancelled();
    // Ends the call as cancelled unless it has ended already (then: whether it was cancelled).
    bool cancel() override;
    // Streams: the number of items is known once the input is exhausted.
    void set_total(std::size_t total);
    // Items handed out by next(), and items received but not handed out yet.
    std::size_t yielded();
    // The caller stopped listening (a dropped imap iterator): let queued chunks go.
    void abandon() noexcept { finished_.store(true, std::memory_order_release); }

protected:
    CallJob(Mode mode, std::size_t total);
    ~CallJob() override;

    // Where an item's outcome goes (place_locked).
    enum class Place { None, Slot, Pending, Ready };
    // Results of a call already complete (a failed map's other chunks, a cancelled call's):
    // true when so, and they are counted, not kept. Once all of a failed map's are in, nothing
    // more is wanted.
    bool late_locked(std::size_t count) noexcept;
    // Counts the outcome of item `index` (failed when error is set) and says where to keep it;
    // `slots` is the number of value slots (Single, List), `completing` is set by the outcome
    // that completes the call, after which nothing is kept.
    Place place_locked(std::size_t index, const std::exception_ptr& error, std::size_t slots, bool& completing);
    // After a batch of outcomes, under the lock: the progress bar, and either a plain wake-up
    // or, when the call just completed, what must follow once the caller's locks are gone.
    // As in Python, a completion callback runs before the result is marked ready, so a caller
    // that waited sees the callback's effects.
    void conclude(std::unique_lock<std::mutex>& lk, Deferred& later, bool completing);
    // Streams: waits for the next result (available() under the lock); false at the end.
    // TimeoutError when none comes in time.
    bool wait_next(std::unique_lock<std::mutex>& lk, const Timeout& timeout, const std::function<bool()>& available);
    // The callback on a successful completion, with the values (Job<R>): whether there is one
    // (under the lock), and running it (once complete_ is set: nothing writes the values then).
    virtual bool has_value_callback_locked() const noexcept = 0;
    virtual void run_value_callback() = 0;

    std::mutex mu_;
    std::condition_variable cv_;
    const Mode mode_;
    std::size_t total_;
    std::size_t done_ = 0;
    std::size_t yielded_ = 0;
    bool complete_ = false;
    bool completing_ = false;
    bool cancelled_ = false;
    std::exception_ptr error_;

private:
    std::vector<std::function<void()>> done_callbacks_;
    std::function<void(std::exception_ptr)> on_error_;
    std::unique_ptr<ProgressBar> bar_;
};

// A call's values: one (Single) or a list (List). A stream's (Ordered, Unordered) are kept by
// StreamJob, below, so a TU that makes no stream does not compile their containers.
template <class R>
class Job : public CallJob {
public:
    using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
    using ListCallback = std::function<void(const std::vector<Value>&)>;
    using ValueCallback = std::function<void(const Value&)>;
    struct Outcome {
        std::optional<Value> value;
        std::exception_ptr error;
    };

    Job(Mode mode, std::size_t total) : CallJob(mode, total) {
        if (mode_ == Mode::Single || mode_ == Mode::List) {
            // A large result list is asked for in huge pages before it is first touched: fresh
            // memory faults in page by page, and 8 MB of 4 KiB faults cost a 1M-item map about
            // as much as its work (docs/benchmarks.md, Pools).
            values_.reserve(total_);
            advise_huge_pages(values_.data(), total_ * sizeof(Slot));
            values_.resize(total_);
        }
    }

    void set_callbacks(ValueCallback on_value, ListCallback on_list,
                       std::function<void(std::exception_ptr)> on_error) {
        on_value_ = std::move(on_value);
        on_list_ = std::move(on_list);
        set_error_callback(std::move(on_error));
    }

    // Reads what run_chunk wrote after the count: see kPerItem and kPacked in detail/pool_wire.hpp.
    void deliver(std::size_t first, std::uint32_t count, InputArchive& ar, Deferred& later) override {
        std::uint8_t layout = 0;
        ar(layout);
        if (layout == kPacked) {
            if constexpr (std::is_void_v<R> || (std::is_trivially_copyable_v<R> && !std::is_same_v<R, bool>)) {
                constexpr std::size_t rsize = std::is_void_v<R> ? 0 : sizeof(Value);
                const std::string_view rest = ar.rest();
                if (rest.size() < count + std::size_t{count} * rsize)
                    throw SerializationError("mproc: malformed results from a pool worker");
                ar.skip(count + std::size_t{count} * rsize);
                if (mode_ == Mode::List && std::memchr(rest.data(), kItemFailed, count) == nullptr)
                    return record_values(later, first, count, rest.data() + count);
                // Decoded in order: the exceptions of the failed items follow the values.
                std::vector<Outcome> got(count);
                for (std::size_t i = 0; i < count; ++i) {
                    if (rest[i] != static_cast<char>(kItemFailed)) {
                        got[i].value.emplace();
                        if constexpr (!std::is_void_v<R>) std::memcpy(&*got[i].value, rest.data() + count + i * rsize, rsize);
                    } else {
                        got[i].error = load_exception(ar);
                    }
                }
                return record(later, first, got);
            }
            throw SerializationError("mproc: packed results for a type that cannot be packed");
        }
        // Decoded before the lock is taken: a value may be large.
        std::vector<Outcome> got(count);
        for (auto& o : got) {
            std::uint8_t ok = kItemFailed;
            ar(ok);
            if (ok != kItemFailed) {
                o.value.emplace();
                if constexpr (!std::is_void_v<R>) ar(*o.value);
            } else {
                o.error = load_exception(ar);
            }
        }
        record(later, first, got);
    }

    void set_value(std::size_t index, Value&& v) {
        Deferred later;
        Outcome o{std::move(v), nullptr};
        record(later, index, std::span<Outcome>(&o, 1));
        for (auto& f : later) f();
    }
    using JobBase::set_error;
    void set_error(std::size_t index, std::exception_ptr e, Deferred& later) override {
        Outcome o{std::nullopt, std::move(e)};
        record(later, index, std::span<Outcome>(&o, 1));
    }

    // --- the caller's side ---

    Value value() {
        std::lock_guard lk(mu_);
        return slot_value(values_[0]);
    }
    std::vector<Value> list() {
        std::lock_guard lk(mu_);
        return gather_locked();
    }
    // For a blocking map, the only reader: the values are moved out, not copied.
    std::vector<Value> take_list() {
        std::lock_guard lk(mu_);
        if constexpr (kPlainSlots) {
            return std::move(values_);  // no copy and no second allocation (24 MB less for a 1M map)
        } else {
            std::vector<Value> out;
            out.reserve(values_.size());
            for (auto& v : values_) out.push_back(std::move(*v));
            return out;
        }
    }
private:
    std::vector<Value> gather_locked() {
        if constexpr (kPlainSlots) {
            return values_;
        } else {
            std::vector<Value> out;
            out.reserve(values_.size());
            for (auto& v : values_) out.push_back(*v);
            return out;
        }
    }

protected:
    // A stream's item, kept for next() (StreamJob).
    virtual void keep_locked(Place, std::size_t, Outcome&) {}

private:
    // Items first, first + 1, ... ended so.
    void record(Deferred& later, std::size_t first, std::span<Outcome> got) {
        std::unique_lock lk(mu_);
        bool completing = false;
        if (!late_locked(got.size())) {
            for (std::size_t i = 0; i < got.size(); ++i) {
                const std::size_t index = first + i;
                const Place place = place_locked(index, got[i].error, values_.size(), completing);
                switch (place) {
                    case Place::None:
                        break;
                    case Place::Slot:
                        if constexpr (kPlainSlots)
                            values_[index] = std::move(*got[i].value);
                        else
                            values_[index] = std::move(got[i].value);
                        break;
                    case Place::Pending:
                    case Place::Ready:
                        keep_locked(place, index, got[i]);
                        break;
                }
            }
        }
        conclude(lk, later, completing);
    }

    // Packed values of a list call, none failed: stored in one pass.
    void record_values(Deferred& later, std::size_t first, std::size_t count, const char* packed) {
        std::unique_lock lk(mu_);
        if (late_locked(count)) return;
        if (first + count > values_.size()) throw SerializationError("mproc: results for items the call does not have");
        for (std::size_t i = 0; i < count; ++i) {
            Value* v = nullptr;
            if constexpr (kPlainSlots)
                v = &values_[first + i];
            else
                v = &values_[first + i].emplace();
            if constexpr (!std::is_void_v<R>) std::memcpy(v, packed + i * sizeof(Value), sizeof(Value));
        }
        done_ += count;
        conclude(lk, later, done_ == total_);
    }

    bool has_value_callback_locked() const noexcept override {
        return (mode_ == Mode::Single && on_value_) || (mode_ == Mode::List && on_list_);
    }
    // The values are read without the lock: the call is completing, nothing writes them any
    // more, and nothing takes them before it is complete.
    // The callback is let go once it ran (what it holds may hold this call).
    void run_value_callback() override {
        if (mode_ == Mode::Single) {
            std::exchange(on_value_, {})(slot_value(values_[0]));
        } else if constexpr (kPlainSlots) {
            std::exchange(on_list_, {})(values_);
        } else {
            std::exchange(on_list_, {})(gather_locked());
        }
    }

    // A value per item: plain when Value has a default constructor (every item is set before
    // the list is read), so a blocking map hands the vector itself to the caller; else optional
    // (and for bool, which std::vector packs into bits).
    static constexpr bool kPlainSlots = std::is_default_constructible_v<Value> && !std::is_same_v<Value, bool>;
    using Slot = std::conditional_t<kPlainSlots, Value, std::optional<Value>>;
    static Value& slot_value(Slot& s) {
        if constexpr (kPlainSlots)
            return s;
        else
            return s.value();
    }
    std::vector<Slot> values_;
    ValueCallback on_value_;
    ListCallback on_list_;
};

// A stream's call (imap, imap_unordered, an executor's map): results handed out by next().
template <class R>
class StreamJob final : public Job<R> {
public:
    using typename Job<R>::Value;
    using typename Job<R>::Outcome;
    using Place = CallJob::Place;
    explicit StreamJob(Mode mode) : Job<R>(mode, static_cast<std::size_t>(-1)) {}

    // Streams: the next result, empty at the end; TimeoutError when none comes in time.
    std::optional<Value> next(const Timeout& timeout) {
        std::unique_lock lk(this->mu_);
        if (!this->wait_next(lk, timeout, [&] {
                if (this->mode_ == Mode::Unordered) return ready_ && !ready_->empty();
                return ready_ && !ready_->empty() && arrived(ready_->front());
            }))
            return std::nullopt;
        Outcome o = std::move(ready_->front());
        ready_->pop_front();
        ++this->yielded_;
        if (o.error) std::rethrow_exception(o.error);
        return std::move(*o.value);
    }

private:
    static bool arrived(const Outcome& o) noexcept { return o.value.has_value() || o.error != nullptr; }

    void keep_locked(Place place, std::size_t index, Outcome& o) override {
        if (!ready_) ready_.emplace();
        if (place == Place::Pending) {
            // Item yielded_ + i at i, empty (neither value nor error) until it arrives.
            if (index < this->yielded_) return;  // a second report of one handed out
            const std::size_t at = index - this->yielded_;
            if (ready_->size() <= at) ready_->resize(at + 1);
            (*ready_)[at] = std::move(o);
        } else {
            ready_->push_back(std::move(o));
        }
    }

    // Unordered: results as they arrived. Ordered: the next items in order, from yielded_ on
    // (a std::map of them cost a node per result). A std::deque allocates even when empty, and
    // a job is made per call.
    std::optional<std::deque<Outcome>> ready_;
};

}  // namespace mproc::detail::pool
