// The header contracts (what each public method blocks on, what its caller must hold, what it
// throws) where no other test checks them: misuse, moved-from and empty handles, timeouts at
// the edges. Within one process (the synchronization objects' other parties are threads), but
// for one test that runs this binary again to see init() refuse its environment.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <mproc/mproc.hpp>

#include "subprocess.hpp"

using namespace std::chrono_literals;

namespace {

const mproc::Timeout kNaN = std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN());

// Condition::wait_for's timeout is one Deadline (detail/deadline.hpp): a timeout too long for
// the clock is forever (its own arithmetic overflowed there, undefined behaviour that happened
// to wrap around to a long wait).
TEST(ConditionContract, WaitForWithATimeoutBeyondTheClockWaitsForThePredicate) {
    for (const mproc::Timeout forever : {mproc::Timeout(1e300), mproc::Timeout(std::chrono::hours::max())}) {
        mproc::Condition c;
        bool ready = false;
        std::unique_lock held(c);
        std::jthread notifier([&] {
            std::lock_guard g(c);  // only once wait_for has released it
            ready = true;
            c.notify();
        });
        EXPECT_TRUE(c.wait_for([&] { return ready; }, forever));
        held.unlock();  // before the notifier is joined: it may still be waiting for the lock
    }
}

// NaN has no meaning as a length of time (Python: ValueError); wait_for's own arithmetic
// turned it into an unspecified deadline.
TEST(ConditionContract, WaitForANaNTimeoutIsInvalid) {
    mproc::Condition c;
    std::lock_guard held(c);
    EXPECT_THROW(c.wait_for([] { return false; }, kNaN), std::invalid_argument);
    EXPECT_THROW(c.wait(kNaN), std::invalid_argument);
}

// An empty Barrier (the default constructor, for a handle to be assigned or loaded): using it
// is std::logic_error, and its noexcept queries answer as for no barrier (they used to throw
// through noexcept, which ends the program).
TEST(BarrierContract, AnEmptyHandleIsMisuseAndItsQueriesAnswer) {
    mproc::Barrier b;
    EXPECT_EQ(b.parties(), 0);
    EXPECT_EQ(b.n_waiting(), 0);
    EXPECT_FALSE(b.broken());
    EXPECT_THROW(b.wait(), std::logic_error);
    EXPECT_THROW(b.reset(), std::logic_error);
    EXPECT_THROW(b.abort(), std::logic_error);
}

// Python's threading.Semaphore.release(n): "n must be one or more" (ValueError); mproc's
// Semaphore takes the same n, and both kinds refuse it alike, releasing nothing.
TEST(SemaphoreContract, ReleaseOfLessThanOneIsInvalid) {
    mproc::Semaphore s(1);
    mproc::threading::Semaphore ts(1);
    for (const int n : {0, -1}) {
        EXPECT_THROW(s.release(n), std::invalid_argument) << n;
        EXPECT_THROW(ts.release(n), std::invalid_argument) << n;
    }
    EXPECT_EQ(s.get_value(), 1);
    EXPECT_EQ(ts.get_value(), 1);
}

// Python's threading.BoundedSemaphore.release(n): ValueError when the value plus n would pass
// the initial value, and nothing is released.
TEST(SemaphoreContract, BoundedReleasePastTheBoundReleasesNothing) {
    mproc::BoundedSemaphore b(3);
    ASSERT_TRUE(b.acquire(false));
    ASSERT_TRUE(b.acquire(false));
    EXPECT_THROW(b.release(3), std::logic_error);
    EXPECT_EQ(b.get_value(), 1);
    b.release(2);
    EXPECT_EQ(b.get_value(), 3);
}

// The caller of wait and notify must hold the condition's lock itself: held by another thread
// is not enough (multiprocessing's Condition asserts _is_mine(): "lock is not owned"), and the
// check comes first, even with nobody waiting and n = 0.
TEST(ConditionContract, WaitAndNotifyNeedTheLockHeldByThisThread) {
    mproc::Lock lock;
    mproc::Condition c(lock);
    std::jthread([&] { lock.acquire(); }).join();  // held by a thread that has ended
    ASSERT_TRUE(lock.locked());
    EXPECT_THROW(c.notify(), std::logic_error);
    EXPECT_THROW(c.notify(0), std::logic_error);
    EXPECT_THROW(c.notify_all(), std::logic_error);
    EXPECT_THROW(c.wait(0s), std::logic_error);
    EXPECT_THROW(c.wait_for([] { return false; }, 10s), std::logic_error);
    lock.release();  // any thread may release a Lock
}

// A moved-from handle is std::logic_error to use; its noexcept queries answer as for an unheld,
// unset object.
TEST(SynchronizeContract, AMovedFromHandleIsMisuse) {
    mproc::Lock lock;
    mproc::Lock lock2 = std::move(lock);
    EXPECT_THROW(lock.acquire(), std::logic_error);  // NOLINT(bugprone-use-after-move)
    EXPECT_THROW(lock.release(), std::logic_error);
    EXPECT_FALSE(lock.locked());
    EXPECT_FALSE(lock.owner_died());

    mproc::Semaphore sem;
    mproc::Semaphore sem2 = std::move(sem);
    EXPECT_THROW(sem.acquire(), std::logic_error);
    EXPECT_THROW(sem.release(), std::logic_error);
    EXPECT_EQ(sem.get_value(), 0);

    mproc::Event event;
    mproc::Event event2 = std::move(event);
    EXPECT_THROW(event.wait(0s), std::logic_error);
    EXPECT_THROW(event.set(), std::logic_error);
    EXPECT_FALSE(event.is_set());

    mproc::Condition cond;
    mproc::Condition cond2 = std::move(cond);
    EXPECT_THROW(cond.acquire(), std::logic_error);
    EXPECT_THROW(cond.notify(), std::logic_error);
}

// Python's Barrier._release: an action that raises breaks the barrier ("except: self._break();
// raise"): the party that ran it gets its exception, the others BrokenBarrierError, and so does
// every later party until reset().
struct ActionFailed {};
void failing_action() { throw ActionFailed{}; }

TEST(BarrierContract, AnActionThatThrowsBreaksTheBarrier) {
    mproc::Barrier b(2, failing_action);
    std::atomic<int> action_errors{0}, broken_errors{0};
    auto party = [&] {
        try {
            b.wait(60s);
        } catch (const mproc::BrokenBarrierError&) {
            ++broken_errors;
        } catch (const ActionFailed&) {
            ++action_errors;
        }
    };
    {
        std::jthread other(party);
        party();
    }
    EXPECT_EQ(action_errors, 1);
    EXPECT_EQ(broken_errors, 1);
    EXPECT_TRUE(b.broken());
    EXPECT_THROW(b.wait(0s), mproc::BrokenBarrierError);
    b.reset();
    EXPECT_FALSE(b.broken());
}

// NaN is no length of time (Python's pytime.c: ValueError "Invalid value NaN"): every call that
// would wait refuses it. One that need not wait may answer first.
TEST(TimeoutContract, NaNIsInvalidWhereTheCallWouldWait) {
    mproc::Lock lock;
    EXPECT_TRUE(lock.acquire(true, kNaN));  // free: taken before the timeout is looked at
    EXPECT_THROW(lock.acquire(true, kNaN), std::invalid_argument);
    lock.release();
    mproc::Semaphore empty(0);
    EXPECT_THROW(empty.acquire(true, kNaN), std::invalid_argument);
    mproc::Event event;
    EXPECT_THROW(event.wait(kNaN), std::invalid_argument);
    event.set();
    EXPECT_TRUE(event.wait(kNaN));
    mproc::Barrier barrier(2);
    EXPECT_THROW(barrier.wait(kNaN), std::invalid_argument);
    // A queue's put and get make their deadline only when they must wait (a tenth of a put's
    // time), but still refuse NaN on entry, as before, and nothing is put.
    mproc::Queue<int> q;
    EXPECT_THROW(q.put(1, true, kNaN), std::invalid_argument);
    EXPECT_EQ(q.qsize(), 0u);
    q.put(2);
    EXPECT_THROW((void)q.get(true, kNaN), std::invalid_argument);
    EXPECT_EQ(q.get(), 2);
}

namespace th = mproc::threading;

// Python's Thread.run() calls the target in the caller: its exception goes to the caller, not
// to excepthook (which only the started thread's bootstrap calls).
TEST(ThreadContract, RunCalledDirectlyThrowsToItsCaller) {
    th::Thread t([] { throw std::runtime_error("from the target"); });
    EXPECT_THROW(t.run(), std::runtime_error);
}

// threading.excepthook(args) is a plain call: what the hook raises reaches its caller.
TEST(ThreadContract, ExcepthookPassesTheHooksExceptionOn) {
    const th::ExceptHook previous = th::set_excepthook([](const th::ExceptHookArgs&) { throw std::runtime_error("hook"); });
    th::ExceptHookArgs args{"std::logic_error", std::make_exception_ptr(std::logic_error("x")), std::nullopt};
    EXPECT_THROW(th::excepthook(args), std::runtime_error);
    th::set_excepthook(previous);
}

// join() on a thread that runs builds its deadline first: NaN is refused, not waited on.
TEST(ThreadContract, JoinWithANaNTimeoutIsInvalid) {
    th::Event go;
    th::Thread t([go]() mutable { go.wait(); });
    t.start();
    EXPECT_THROW(t.join(kNaN), std::invalid_argument);
    go.set();
    t.join();
    EXPECT_FALSE(t.is_alive());
}

// A value whose reading fails for one number: its writing does not (the failure is the
// reader's alone).
struct Fussy {
    int v = 0;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(v);
        if (std::is_same_v<Ar, mproc::detail::InputArchive> && v == 13) throw std::domain_error("13 cannot be read");
    }
};

// A message get() cannot read is taken all the same, with the error going to the caller, so one
// bad message cannot wedge the queue (as a Connection consumes one it cannot read).
TEST(QueueContract, AMessageThatCannotBeReadIsTakenAllTheSame) {
    mproc::Queue<Fussy> q;
    q.put({13});
    q.put({14});
    EXPECT_THROW(q.get(), std::domain_error);
    EXPECT_EQ(q.get().v, 14);
    EXPECT_EQ(q.qsize(), 0u);
}

// SimpleQueue::close(): this handle puts and gets no more (Python: OSError "handle is
// closed"; mproc's misuse is std::logic_error), and empty() polls nothing.
TEST(QueueContract, ASimpleQueueClosedIsMisuseToUse) {
    mproc::SimpleQueue<int> q;
    mproc::SimpleQueue<int> other = q;
    q.put(1);
    q.close();
    EXPECT_THROW(q.put(2), std::logic_error);
    EXPECT_THROW(q.get(), std::logic_error);
    EXPECT_THROW(q.empty(), std::logic_error);
    EXPECT_EQ(other.get(), 1);  // another handle is unaffected
}

// A moved-from queue is std::logic_error to use.
TEST(QueueContract, AMovedFromQueueIsMisuse) {
    mproc::Queue<int> q;
    mproc::Queue<int> q2 = std::move(q);
    EXPECT_THROW(q.put(1), std::logic_error);  // NOLINT(bugprone-use-after-move)
    EXPECT_THROW(q.get_nowait(), std::logic_error);
    EXPECT_THROW(q.qsize(), std::logic_error);
}

// NaN timeouts, as the synchronization objects': refused where the call would wait.
TEST(TimeoutContract, NaNIsInvalidForAQueueThatWouldWait) {
    mproc::JoinableQueue<int> q;
    EXPECT_THROW(q.get(true, kNaN), std::invalid_argument);
    q.put(1);
    EXPECT_THROW(q.join(kNaN), std::invalid_argument);
    EXPECT_EQ(q.get(), 1);
    q.task_done();
}

// A default-constructed Connection is a closed one: every use is std::logic_error (Python's
// closed handle: OSError "handle is closed").
TEST(ConnectionContract, ADefaultConstructedConnectionIsClosed) {
    mproc::Connection c;
    EXPECT_TRUE(c.closed());
    EXPECT_FALSE(c.readable());
    EXPECT_FALSE(c.writable());
    EXPECT_THROW(c.send(1), std::logic_error);
    EXPECT_THROW(c.send_bytes("x"), std::logic_error);
    EXPECT_THROW(c.recv<int>(), std::logic_error);
    EXPECT_THROW(c.recv_bytes(), std::logic_error);
    EXPECT_THROW(c.poll(), std::logic_error);
    EXPECT_THROW(c.fileno(), std::logic_error);
    EXPECT_THROW(c.dup(), std::logic_error);
    EXPECT_NO_THROW(c.close());
}

TEST(ConnectionContract, PollAndDupAfterCloseAreMisuse) {
    auto [a, b] = mproc::Pipe();
    a.close();
    EXPECT_THROW(a.poll(), std::logic_error);
    EXPECT_THROW(a.dup(), std::logic_error);
    EXPECT_TRUE(b.poll());  // the other end sees end of file
}

// Python's Connection.recv_bytes_into: ValueError "offset too large", before anything is read.
TEST(ConnectionContract, RecvIntoPastTheBuffersEndReadsNothing) {
    auto [a, b] = mproc::Pipe();
    a.send_bytes("hello");
    char buf[8];
    EXPECT_THROW(b.recv_bytes_into(std::span<char>(buf), 9), std::invalid_argument);
    EXPECT_EQ(b.recv_bytes(), "hello");
}

// Python's Connection(handle, readable=False, writable=False): ValueError; the descriptor stays
// the caller's.
TEST(ConnectionContract, NeitherReadableNorWritableIsInvalidAndTheDescriptorStaysTheCallers) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    EXPECT_THROW(mproc::Connection(fds[0], false, false), std::invalid_argument);
    EXPECT_NE(::fcntl(fds[0], F_GETFD), -1) << "the descriptor was closed";
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(ConnectionContract, AClosedListenerIsMisuseToUse) {
    mproc::connection::Listener l;
    l.close();
    EXPECT_THROW(l.fileno(), std::logic_error);
    EXPECT_THROW(l.accept(0s), std::logic_error);
}

TEST(TimeoutContract, NaNIsInvalidForAConnectionThatWouldWait) {
    auto [a, b] = mproc::Pipe();
    EXPECT_THROW(b.poll(kNaN), std::invalid_argument);
    EXPECT_THROW(mproc::connection::wait({b}, kNaN), std::invalid_argument);
    mproc::connection::Listener l;
    EXPECT_THROW(l.accept(kNaN), std::invalid_argument);
}

void do_nothing() {}

// A process not started has nothing to signal or wait on (Python: terminate() and kill() fail
// on its missing Popen, sentinel raises ValueError); mproc's misuse is std::logic_error. Its
// queries answer without error.
TEST(ProcessContract, AProcessNotStartedCannotBeSignalled) {
    mproc::Process p(do_nothing);
    EXPECT_THROW(p.terminate(), std::logic_error);
    EXPECT_THROW(p.kill(), std::logic_error);
    EXPECT_THROW(p.sentinel(), std::logic_error);
    EXPECT_FALSE(p.pid());
    EXPECT_FALSE(p.exitcode());
    EXPECT_FALSE(p.is_alive());
}

// Only a child can be signalled from here: not the current process (Python has no such guard:
// terminate() of current_process() fails on its missing Popen).
TEST(ProcessContract, TheCurrentProcessCannotBeSignalled) {
    mproc::BaseProcess me = mproc::current_process();
    EXPECT_THROW(me.terminate(), std::logic_error);
    EXPECT_THROW(me.kill(), std::logic_error);
    EXPECT_THROW(me.sentinel(), std::logic_error);
    EXPECT_TRUE(me.is_alive());
}

TEST(ProcessContract, AMovedFromProcessIsMisuse) {
    mproc::Process p(do_nothing);
    mproc::Process q = std::move(p);
    EXPECT_THROW(p.name(), std::logic_error);  // NOLINT(bugprone-use-after-move)
    EXPECT_THROW(p.start(), std::logic_error);
    EXPECT_THROW(p.join(), std::logic_error);
    EXPECT_FALSE(q.pid());
}

namespace sm = mproc::shared_memory;

// A closed (or empty) handle has nothing to send: std::logic_error, before anything is written.
// unlink() needs only the name, so it works after close() (Python's does too).
TEST(SharedMemoryContract, AClosedHandleCannotBeSentButCanBeUnlinked) {
    sm::SharedMemory shm({.create = true, .size = 4096});
    shm.close();
    auto [a, b] = mproc::Pipe();
    EXPECT_THROW(a.send(shm), std::logic_error);
    EXPECT_THROW(a.send(sm::SharedMemory()), std::logic_error);
    EXPECT_FALSE(b.poll());
    EXPECT_NO_THROW(shm.unlink());
}

TEST(SharedMemoryContract, AListWhoseSegmentIsClosedIsMisuseToUse) {
    sm::ShareableList<int> list(std::vector<int>{1, 2, 3});
    list.shm().close();
    EXPECT_THROW((void)list.size(), std::logic_error);
    EXPECT_THROW((void)list.get(0), std::logic_error);
    list.shm().unlink();
}

// The index is checked before the lock is taken: with a non-recursive lock this thread holds,
// a bad index is std::out_of_range, not a wait for itself.
TEST(SharedCTypesContract, AnIndexOutOfRangeIsCheckedBeforeTheLock) {
    mproc::Lock lock;
    mproc::Array<int, mproc::Lock> a(4, lock);
    std::lock_guard held(a.get_lock());
    EXPECT_THROW((void)a.get(4), std::out_of_range);
    EXPECT_THROW(a.set(9, 1), std::out_of_range);
    EXPECT_EQ(a.get_obj()[3], 0);  // get_obj takes no lock
}

TEST(SharedCTypesContract, AMovedFromObjectIsMisuse) {
    mproc::Value<int> v(7);
    mproc::Value<int> v2 = std::move(v);
    EXPECT_THROW((void)v.value(), std::logic_error);  // NOLINT(bugprone-use-after-move)
    EXPECT_THROW((void)v.get_obj(), std::logic_error);
    mproc::RawArray<int> r(3);
    mproc::RawArray<int> r2 = std::move(r);
    EXPECT_THROW((void)r.data(), std::logic_error);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(v2.value(), 7);
}

// loads() passes a type's own exception through; only cereal's become SerializationError.
TEST(SerializeContract, ATypesOwnExceptionPassesThrough) {
    const std::string bytes = mproc::dumps(Fussy{13});
    EXPECT_THROW((void)mproc::loads<Fussy>(bytes), std::domain_error);
    EXPECT_THROW((void)mproc::loads<int>(bytes), mproc::SerializationError);
}

// init() refuses an MPROC_START_METHOD that names no start method by exiting with status 2 and
// saying why, not by throwing (it runs before main's own code, which could not catch it).
TEST(ContextContract, InitExitsWithStatusTwoOnAnUnknownStartMethodInTheEnvironment) {
    char self[4096] = {};
    ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
    mproc_test::Subprocess child(
        {"/bin/sh", "-c", "MPROC_START_METHOD=threads exec \"$0\" --gtest_list_tests 2>&1", self});
    const std::string out = child.rest();
    EXPECT_EQ(child.wait(), 2) << out;
    EXPECT_NE(out.find("MPROC_START_METHOD=threads"), std::string::npos) << out;
}

}  // namespace
