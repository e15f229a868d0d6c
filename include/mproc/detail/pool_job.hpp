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
#include <map>
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

template <class R>
class Job final : public JobBase {
public:
    using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
    using ListCallback = std::function<void(const std::vector<Value>&)>;
    using ValueCallback = std::function<void(const Value&)>;
    struct Outcome {
        std::optional<Value> value;
        std::exception_ptr error;
    };

    Job(Mode mode, std::size_t total) : mode_(mode), total_(total) {
        if (mode_ == Mode::Single || mode_ == Mode::List) {
            // A large result list is asked for in huge pages before it is first touched: fresh
            // memory faults in page by page, and 8 MB of 4 KiB faults cost a 1M-item map about
            // as much as its work (docs/benchmarks.md, Pools).
            values_.reserve(total_);
            advise_huge_pages(values_.data(), total_ * sizeof(Slot));
            values_.resize(total_);
        }
        if (total_ == 0 && mode_ == Mode::List) {
            complete_ = completing_ = true;
            finished_.store(true);
        }
    }

    void set_callbacks(ValueCallback on_value, ListCallback on_list,
                       std::function<void(std::exception_ptr)> on_error) {
        on_value_ = std::move(on_value);
        on_list_ = std::move(on_list);
        on_error_ = std::move(on_error);
    }
    void set_progress(std::unique_ptr<ProgressBar> bar) { bar_ = std::move(bar); }

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
                return record(later, first, count, [&](std::size_t i) {
                    Outcome o;
                    if (rest[i] != static_cast<char>(kItemFailed)) {
                        o.value.emplace();
                        if constexpr (!std::is_void_v<R>) std::memcpy(&*o.value, rest.data() + count + i * rsize, rsize);
                    } else {
                        o.error = load_exception(ar);
                    }
                    return o;
                });
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
        record(later, first, count, [&](std::size_t i) { return std::move(got[i]); });
    }

    void set_value(std::size_t index, Value&& v) {
        Deferred later;
        record(later, index, 1, [&](std::size_t) { return Outcome{std::move(v), nullptr}; });
        for (auto& f : later) f();
    }
    using JobBase::set_error;
    void set_error(std::size_t index, std::exception_ptr e, Deferred& later) override {
        record(later, index, 1, [&](std::size_t) { return Outcome{std::nullopt, e}; });
    }

    // --- the caller's side ---

    // Waits until the call is complete (Single, List) or until the deadline.
    bool wait(const Timeout& timeout) {
        const Deadline deadline = Deadline::after(timeout);
        if (pump_) {
            for (;;) {
                {
                    std::lock_guard lk(mu_);
                    if (complete_) return true;
                }
                if (deadline.expired()) return false;
                const std::shared_ptr<void> core = core_.lock();
                if (!core || !pump_(core, *this, deadline.remaining())) break;
            }
        }
        std::unique_lock lk(mu_);
        return deadline.wait(cv_, lk, [&] { return complete_; });
    }
    bool ready() {
        std::lock_guard lk(mu_);
        return complete_;
    }
    // Single/List, once complete.
    std::exception_ptr error() {
        std::lock_guard lk(mu_);
        return error_;
    }
    Value value() {
        std::lock_guard lk(mu_);
        return slot_value(values_[0]);
    }
    std::vector<Value> list() {
        std::lock_guard lk(mu_);
        return gather_locked();
    }
    // Runs f once the call is complete: now, in this thread, when it already is (Python:
    // Future.add_done_callback).
    void add_done_callback(std::function<void()> f) {
        {
            std::lock_guard lk(mu_);
            if (!complete_) {
                done_callbacks_.push_back(std::move(f));
                return;
            }
        }
        run_callback(f);
    }
    bool cancelled() {
        std::lock_guard lk(mu_);
        return cancelled_;
    }
    // Ends the call as cancelled unless it has ended already (then: whether it was cancelled).
    bool cancel() override {
        Deferred later;
        {
            std::unique_lock lk(mu_);
            if (completing_) return cancelled_;
            cancelled_ = true;
            error_ = std::make_exception_ptr(futures::CancelledError());
            done_ = total_;
            conclude(lk, later, true);
        }
        for (auto& f : later) f();
        return true;
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

    // Streams: the number of items is known once the input is exhausted.
    void set_total(std::size_t total) {
        {
            std::lock_guard lk(mu_);
            total_ = total;
            if (bar_) bar_->set_total(total);
        }
        cv_.notify_all();
    }
    // Streams: the next result, empty at the end; TimeoutError when none comes in time.
    std::optional<Value> next(const Timeout& timeout) {
        std::unique_lock lk(mu_);
        auto available = [&] {
            if (yielded_ == total_) return true;
            if (mode_ == Mode::Unordered) return ready_ && !ready_->empty();
            return pending_.count(yielded_) != 0;
        };
        if (!Deadline::after(timeout).wait(cv_, lk, available))
            throw TimeoutError("mproc: no result arrived within the timeout");
        if (yielded_ == total_) return std::nullopt;
        Outcome o;
        if (mode_ == Mode::Unordered) {
            o = std::move(ready_->front());
            ready_->pop_front();
        } else {
            auto it = pending_.find(yielded_);
            o = std::move(it->second);
            pending_.erase(it);
        }
        ++yielded_;
        if (o.error) std::rethrow_exception(o.error);
        return std::move(*o.value);
    }
    // Items handed out by next(), and items received but not handed out yet.
    std::size_t yielded() {
        std::lock_guard lk(mu_);
        return yielded_;
    }
    // The caller stopped listening (a dropped imap iterator): let queued chunks go.
    void abandon() { finished_.store(true, std::memory_order_release); }

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

    // Items first, first + 1, ... ended so. As in Python, a completion callback runs before
    // the result is marked ready, so a caller that waited sees the callback's effects.
    // get(i) gives item first + i's outcome; it is called in order, under the lock.
    template <class Get>
    void record(Deferred& later, std::size_t first, std::size_t count, Get get) {
        std::unique_lock lk(mu_);
        if (completing_) {
            // Results of a call already complete (a failed map's other chunks, a cancelled
            // call's): read past, since get may read them from the worker's message. Once all
            // of a failed map's are in, nothing more is wanted.
            for (std::size_t i = 0; i < count; ++i) (void)get(i);
            if (mode_ == Mode::List && (done_ += count) >= total_) finished_.store(true, std::memory_order_release);
            return;
        }
        bool completing = false;
        // Every outcome is taken, even after the one that completes the call: get may read
        // them in turn from the worker's message, whose next record follows.
        for (std::size_t i = 0; i < count; ++i) {
            Outcome o = get(i);
            const std::size_t index = first + i;
            ++done_;
            if (completing) continue;
            switch (mode_) {
                case Mode::Single:
                case Mode::List:
                    if (index >= values_.size()) break;
                    if (o.error)
                        error_ = o.error;
                    else if constexpr (kPlainSlots)
                        values_[index] = std::move(*o.value);
                    else
                        values_[index] = std::move(o.value);
                    if (o.error || done_ == total_) completing = true;
                    break;
                case Mode::Ordered:
                    pending_[index] = std::move(o);
                    break;
                case Mode::Unordered:
                    if (!ready_) ready_.emplace();
                    ready_->push_back(std::move(o));
                    break;
            }
        }
        conclude(lk, later, completing);
    }

    // Packed values of a list call, none failed: stored in one pass.
    void record_values(Deferred& later, std::size_t first, std::size_t count, const char* packed) {
        std::unique_lock lk(mu_);
        if (completing_) {
            if (mode_ == Mode::List && (done_ += count) >= total_) finished_.store(true, std::memory_order_release);
            return;
        }
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

    // After a batch of outcomes, under the lock: the progress bar, and either a plain wake-up
    // or, when the call just completed, what must follow once the caller's locks are gone.
    void conclude(std::unique_lock<std::mutex>& lk, Deferred& later, bool completing) {
        if (bar_) bar_->update(done_);
        if (!completing) {
            lk.unlock();
            cv_.notify_all();
            return;
        }
        completing_ = true;
        // A map that failed is complete for its caller (get() raises the first error), but its
        // other chunks still run, as Python runs every task of a map: the pool drops them only
        // once every item is in.
        if (!(mode_ == Mode::List && done_ < total_)) finished_.store(true, std::memory_order_release);
        bar_.reset();
        std::function<void()> callback = completion_callback_locked();
        lk.unlock();
        later.push_back([self = std::static_pointer_cast<Job>(shared_from_this()), callback = std::move(callback)] {
            if (callback) run_callback(callback);
            std::vector<std::function<void()>> done;
            {
                std::lock_guard lk(self->mu_);
                self->complete_ = true;
                done.swap(self->done_callbacks_);
            }
            self->cv_.notify_all();
            self->signal_completion();
            for (auto& f : done) run_callback(f);
        });
    }

    std::function<void()> completion_callback_locked() {
        if (error_) {
            if (!on_error_) return {};
            return [f = std::move(on_error_), e = error_] { f(e); };
        }
        if (mode_ == Mode::Single && on_value_)
            return [f = std::move(on_value_), v = slot_value(values_[0])] { f(v); };
        if (mode_ == Mode::List && on_list_)
            return [f = std::move(on_list_), l = gather_locked()] { f(l); };
        return {};
    }

    std::mutex mu_;
    std::condition_variable cv_;
    const Mode mode_;
    std::size_t total_;
    std::size_t done_ = 0;
    bool complete_ = false;
    bool completing_ = false;
    bool cancelled_ = false;
    std::vector<std::function<void()>> done_callbacks_;
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
    std::exception_ptr error_;
    std::map<std::size_t, Outcome> pending_;  // Ordered
    // Unordered. A std::deque allocates even when empty, and a job is made per call.
    std::optional<std::deque<Outcome>> ready_;
    std::size_t yielded_ = 0;
    ValueCallback on_value_;
    ListCallback on_list_;
    std::function<void(std::exception_ptr)> on_error_;
    std::unique_ptr<ProgressBar> bar_;
};

}  // namespace mproc::detail::pool
