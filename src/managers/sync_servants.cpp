// The servants of SyncManager's synchronization types, which a server makes by type key: Lock
// and RLock, Condition, Semaphore and BoundedSemaphore, Event, Barrier. Each synchronizes
// itself (Servant::concurrent), waits with wait_for_client so that a call whose client went
// away gives up, and answers its method set of mproc/detail/manager_methods.hpp.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>

#include "mproc/errors.hpp"
#include "managers/protocol.hpp"

namespace mproc::managers::detail {
namespace {
using Lock = std::unique_lock<std::mutex>;

// Lock and RLock, and a Condition's lock: the owner is a client (one per client thread).
class OwnedLock {
public:
    explicit OwnedLock(bool recursive) : recursive_(recursive) {}
    // With mu_ held by lk.
    bool acquire(Lock& lk, bool block, const Timeout& timeout) {
        const void* me = current_client();
        if (recursive_ && owner_ == me && depth_ > 0) {
            ++depth_;
            return true;
        }
        auto free = [&] { return depth_ == 0; };
        if (!free() && (!block || !wait_for_client(lk, cv_, Deadline::after(timeout), free))) return false;
        own(me, 1);
        return true;
    }
    void release(Lock&) {
        if (depth_ == 0)
            throw std::logic_error(recursive_ ? "mproc: cannot release un-acquired lock" : "mproc: release unlocked lock");
        if (recursive_ && owner_ != current_client())
            throw std::logic_error("mproc: cannot release un-acquired lock (held by another client)");
        if (--depth_ > 0) return;
        give_back();
    }
    // The request acquire(block, timeout), which Lock, RLock and Condition share.
    void acquire(Lock& lk, InputArchive& in, OutputArchive& out) {
        const bool block = take<bool>(in);
        out(acquire(lk, block, take<Timeout>(in)));
    }
    bool owned() const { return depth_ > 0 && owner_ == current_client(); }
    bool locked() const { return depth_ > 0; }
    // For Condition::wait: give the lock up at any depth, and take it back.
    std::uint32_t release_all() {
        const std::uint32_t d = depth_;
        depth_ = 0;
        give_back();
        return d;
    }
    void restore(Lock& lk, std::uint32_t depth) {
        wait_for_client(lk, cv_, Deadline::never(), [&] { return depth_ == 0; });
        own(current_client(), depth);
    }
    std::mutex mu_;

private:
    void own(const void* me, std::uint32_t depth) {
        owner_ = me;
        depth_ = depth;
        // Released if this client disconnects while holding it (Python leaves it held forever).
        on_disconnect(this, [this, me] {
            std::lock_guard g(mu_);
            if (owner_ == me && depth_ > 0) {
                depth_ = 0;
                give_back();
            }
        });
    }
    void give_back() {
        forget_on_disconnect_of(owner_);
        owner_ = nullptr;
        cv_.notify_one();
    }
    void forget_on_disconnect_of(const void* owner) {
        if (owner == current_client()) forget_on_disconnect(this);
    }
    bool recursive_;
    const void* owner_ = nullptr;
    std::uint32_t depth_ = 0;
    std::condition_variable cv_;
};

class LockServant final : public Servant {
public:
    explicit LockServant(bool recursive) : lock_(recursive) {}
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(lock_.mu_);
        switch (find_method<LockMethod>(m, "Lock")) {
            case LockMethod::acquire:
                lock_.acquire(lk, in, out);
                return;
            case LockMethod::release:
                lock_.release(lk);
                return;
            case LockMethod::locked:
                out(lock_.locked());
                return;
        }
    }

private:
    OwnedLock lock_;
};

class ConditionServant final : public Servant {
public:
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(lock_.mu_);
        using M = ConditionMethod;
        const M method = find_method<M>(m, "Condition");
        switch (method) {
            case M::acquire:
                lock_.acquire(lk, in, out);
                return;
            case M::release:
                lock_.release(lk);
                return;
            case M::locked:
                out(lock_.locked());
                return;
            case M::wait: {
                const auto deadline = Deadline::after(take<Timeout>(in));
                if (!lock_.owned()) throw std::logic_error("mproc: cannot wait on un-acquired lock");
                auto me = std::make_shared<bool>(false);  // set by notify
                waiters_.push_back(me);
                const std::uint32_t depth = lock_.release_all();
                bool notified = false;
                try {
                    notified = wait_for_client(lk, cv_, deadline, [&] { return *me; });
                } catch (...) {
                    std::erase(waiters_, me);
                    throw;  // the client is gone: it does not take the lock back
                }
                if (!notified) std::erase(waiters_, me);
                lock_.restore(lk, depth);
                out(notified);
                return;
            }
            case M::notify:
            case M::notify_all: {
                if (!lock_.owned()) throw std::logic_error("mproc: cannot notify on un-acquired lock");
                int n = method == M::notify ? take<int>(in) : static_cast<int>(waiters_.size());
                while (n-- > 0 && !waiters_.empty()) {
                    *waiters_.front() = true;
                    waiters_.pop_front();
                }
                cv_.notify_all();
                return;
            }
        }
    }

private:
    OwnedLock lock_{true};
    std::condition_variable cv_;
    std::deque<std::shared_ptr<bool>> waiters_;  // oldest first
};

class SemaphoreServant final : public Servant {
public:
    explicit SemaphoreServant(bool bounded) : bounded_(bounded) {}
    void init(InputArchive& in) {
        in(value_);
        if (value_ < 0) throw std::invalid_argument("mproc: semaphore initial value must be >= 0");
        bound_ = value_;
    }
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(mu_);
        using M = SemaphoreMethod;
        switch (find_method<M>(m, "Semaphore")) {
            case M::acquire: {
                const bool block = take<bool>(in);
                const auto deadline = Deadline::after(take<Timeout>(in));
                auto ready = [&] { return value_ > 0; };
                const bool ok = ready() || (block && wait_for_client(lk, cv_, deadline, ready));
                if (ok) --value_;
                out(ok);
                return;
            }
            case M::release: {
                const int n = take<int>(in);
                if (n < 1) throw std::invalid_argument("mproc: n must be one or more");
                if (bounded_ && value_ + n > bound_) throw std::logic_error("mproc: semaphore or lock released too many times");
                value_ += n;
                for (int i = 0; i < n; ++i) cv_.notify_one();
                return;
            }
            case M::get_value:
                out(value_);
                return;
        }
    }

private:
    bool bounded_;
    int value_ = 1, bound_ = 1;
    std::mutex mu_;
    std::condition_variable cv_;
};

class EventServant final : public Servant {
public:
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(mu_);
        using M = EventMethod;
        switch (find_method<M>(m, "Event")) {
            case M::is_set:
                out(flag_);
                return;
            case M::set:
                flag_ = true;
                cv_.notify_all();
                return;
            case M::clear:
                flag_ = false;
                return;
            case M::wait:
                out(wait_for_client(lk, cv_, Deadline::after(take<Timeout>(in)), [&] { return flag_; }));
                return;
        }
    }

private:
    bool flag_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
};

class BarrierServant final : public Servant {
public:
    void init(InputArchive& in) {
        in(parties_, timeout_);
        if (parties_ < 1) throw std::invalid_argument("mproc: a Barrier needs at least one party");
    }
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        Lock lk(mu_);
        using M = BarrierMethod;
        switch (find_method<M>(m, "Barrier")) {
            case M::wait:
                out(wait(lk, take<Timeout>(in)));
                return;
            case M::reset:
                if (waiting_ > 0) break_barrier();  // the waiters get BrokenBarrierError
                broken_ = false;
                ++generation_;
                waiting_ = 0;
                return;
            case M::abort:
                break_barrier();
                return;
            case M::parties:
                out(parties_);
                return;
            case M::n_waiting:
                out(broken_ ? 0 : waiting_);
                return;
            case M::broken:
                out(broken_);
                return;
        }
    }

private:
    // This party's index once all have come; BrokenBarrierError when the barrier breaks.
    int wait(Lock& lk, Timeout timeout) {
        if (!timeout) timeout = timeout_;
        if (broken_) throw BrokenBarrierError();
        const std::uint64_t gen = generation_;
        const int index = waiting_++;
        if (waiting_ == parties_) {
            waiting_ = 0;
            ++generation_;
            cv_.notify_all();
            return index;
        }
        bool passed = false;
        try {
            passed = wait_for_client(lk, cv_, Deadline::after(timeout), [&] { return generation_ != gen || broken_; });
        } catch (...) {
            break_barrier();  // a party's client went away: the others cannot pass
            throw;
        }
        if (generation_ != gen) return index;
        if (!passed) break_barrier();  // a timeout breaks the barrier, as in Python
        throw BrokenBarrierError();
    }
    void break_barrier() {
        broken_ = true;
        waiting_ = 0;
        cv_.notify_all();
    }
    int parties_ = 1, waiting_ = 0;
    Timeout timeout_;
    std::uint64_t generation_ = 0;
    bool broken_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
};

}  // namespace

void register_sync_types() {
    register_type(SyncTypeKey::lock, [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<LockServant>(false); });
    register_type(SyncTypeKey::rlock, [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<LockServant>(true); });
    register_type(SyncTypeKey::semaphore, [](InputArchive& init) -> std::unique_ptr<Servant> {
        auto s = std::make_unique<SemaphoreServant>(false);
        s->init(init);
        return s;
    });
    register_type(SyncTypeKey::bounded_semaphore, [](InputArchive& init) -> std::unique_ptr<Servant> {
        auto s = std::make_unique<SemaphoreServant>(true);
        s->init(init);
        return s;
    });
    register_type(SyncTypeKey::condition, [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<ConditionServant>(); });
    register_type(SyncTypeKey::event, [](InputArchive&) -> std::unique_ptr<Servant> { return std::make_unique<EventServant>(); });
    register_type(SyncTypeKey::barrier, [](InputArchive& init) -> std::unique_ptr<Servant> {
        auto s = std::make_unique<BarrierServant>();
        s->init(init);
        return s;
    });
}

}  // namespace mproc::managers::detail
