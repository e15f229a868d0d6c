// src/mpi/engine.hpp: the one thread of a rank that calls MPI (private; engine.cpp).
//
// Every MPI call of a rank goes through its engine, so MPI_THREAD_FUNNELED suffices: rank 0
// runs it in a thread of its own, started by mproc::init (the program goes on in main); a
// worker rank runs it in main's thread and never returns. The engine moves byte strings
// between rank 0 and the worker ranks (src/mpi/wire.hpp), tells its Role what arrives, sends
// heartbeats, and tells the Role when a peer has been silent too long: Open MPI 4.1 has no
// ULFM and never reports a dead rank (its sends to one stay pending or are silently lost), so
// silence is the only sign.
//
// Ranks waiting for work do not spin: after the last message the loop polls on for kSpin,
// then sleeps between polls, longer and longer (up to 1 ms, 5 ms after a second of nothing);
// a message to send wakes it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mproc::detail {
struct Loan;  // mproc/detail/archive.hpp
}

namespace mproc::detail::mpi {

using Clock = std::chrono::steady_clock;

// What the engine knows of a rank: from its hello (rank 0's, from itself).
struct Peer {
    std::string host;
    std::int64_t pid = 0;
    std::string build_id;
    bool lost = false;
    bool forsaken = false;      // lost for what it sent: it may still live, and is told to exit
    bool bye = false;           // it has left the job (kBye)
    Clock::time_point heard{};  // the last message from it
    Clock::time_point told{};   // the last message to it
};

// What a rank does with what arrives, in order of arrival: a short message on the engine's
// thread, a long one (decoding a large result, handing a large chunk to a process pool) on its
// helper thread, so that it never holds the engine's thread, whose polls and heartbeats keep
// the ranks' liveness. A role must not block on what only the engine's thread can do.
class Role {
public:
    virtual ~Role() = default;
    // A whole message from source: msg[0] is the engine's frame byte, msg[1] its kind (wire.hpp);
    // tail, what was posted as its tail (empty when that was short: then it ends msg).
    virtual void on_message(int source, std::string& msg, std::string& tail) = 0;
    // source has said nothing for the liveness timeout: it is taken for dead, for good.
    virtual void on_lost(int source) = 0;
    // Whether the loop should stop (a worker rank told to exit), and the process's exit status.
    virtual bool done() const = 0;
    virtual int exit_code() const { return 0; }
    // Whether an answer is due over MPI (rank 0: tasks are out on ranks): the engine polls on.
    virtual bool expecting() const { return false; }
    // Called at every round of the engine's loop, on its thread: work of the role's own that
    // the engine's polls may do (a worker rank reads its process pools' results); true when
    // there was some.
    virtual bool poll() { return false; }
    // The engine is about to sleep (true) or has woken (false), with none of its locks held:
    // what poll() did must be left to others meanwhile.
    virtual void resting(bool) {}
};

class Engine {
public:
    // Whether this process was started by mpiexec (Open MPI's or another PMI launcher's
    // environment): only then does mproc join an MPI job.
    static bool launched_by_mpiexec() noexcept;
    // Rank 0's engine once mproc::init joined the job; null elsewhere (and in worker ranks).
    static Engine* root() noexcept;

    // Rank 0: starts the engine's thread and returns once every rank has said hello and all
    // run this build, or exits the program saying which rank does not. A worker rank: serves
    // (role from make_server) until rank 0 says exit, then exits the process.
    static void join_job();

    // For a program that runs MPI itself (MPICommExecutor): an engine over a duplicate of
    // *comm (an MPI_Comm*), with rank `root` in rank 0's part. Collective over the
    // communicator. On root: starts the engine's thread and returns it once the ranks have met
    // (the caller stops and deletes it). Elsewhere: serves tasks in this thread until root's
    // engine stops, then returns null. std::invalid_argument without MPI_THREAD_MULTIPLE or for
    // a root out of range; ProcessError when a rank runs another build.
    static Engine* over(void* comm, int root);
    int root_rank() const noexcept { return root_; }

    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }
    // A copy: hosts and pids do not change, `lost` may.
    Peer peer(int r) const;
    // "rank 1 on host h1 (pid 123)".
    std::string describe(int r) const;
    // Any thread: queues msg (made with begin_message) for dest; the engine sends it in order.
    // A large tail (a chunk's items) travels as its own part, so that neither side copies it
    // into or out of the message; a short one is appended to msg. With a loan, the tail is
    // `tail` with the loan's runs inserted, each sent from where it is; the loan is let go
    // (on the helper thread: freeing a gigabyte takes a while) once they have been sent.
    void post(int dest, std::string msg, std::string tail = {}, std::shared_ptr<const Loan> loan = {});
    void set_role(std::shared_ptr<Role> role);
    // Takes r for dead from now on (it sent what no rank of ours writes); what it sends is
    // dropped, and it is told to exit at the end.
    void forsake(int r);
    // How long a peer may be silent before it is taken for lost, as text ("5 s").
    std::string liveness_text() const;
    // Rank 0 at exit: tells the worker ranks to exit, finalizes MPI, ends the thread.
    void stop() noexcept;

    // The last message this engine received in pieces (any thread; for tests): its bytes, how
    // long its pieces took (from the first asked for to the last), and the longest the engine
    // went meanwhile without its heartbeats and liveness checks. That gap is what a peer's
    // liveness timeout must exceed; receiving a few pieces at a time keeps it to a fraction of
    // the whole (mpi.scenario.large checks it).
    struct LongReceive {
        std::size_t bytes = 0;
        Clock::duration took{}, longest_gap{};
    };
    LongReceive last_long_receive() const;
    // The CPU the engine's thread ran on at its last round (-1 before the first): a caller on
    // the same CPU is woken there cheaply; one elsewhere looks instead (MpiCore::adopt).
    int cpu() const noexcept { return cpu_.load(std::memory_order_relaxed); }

    Engine() = default;
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

private:
    void run(bool root);
    void setup();
    bool hello_phase();
    void loop();
    bool send_queued();
    bool receive_all();
    void take(int src, std::string msg);
    bool progress_pieces(int src);
    void heartbeats_and_liveness(Clock::time_point now);
    void finish_sends(Clock::time_point until);
    bool all_said_bye() const;
    void hand_over(int src, std::string msg, std::string tail);
    void defer(std::function<void()> f);
    void helper_loop();
    void stop_helper();

    struct Send;
    struct Partial;  // a message in pieces from one rank (engine.cpp)
    void note_gap(Partial& part, Clock::time_point now) const;  // into part.longest_gap
    struct Outgoing {
        int dest;
        std::string msg, tail;
        std::shared_ptr<const Loan> loan;
    };
    int rank_ = 0, size_ = 1;
    int root_ = 0;          // the rank that runs the program's pools
    bool owns_mpi_ = true;  // MPI_Init and MPI_Finalize are ours (static mode), or the program's
    int met_ = 0;           // under mu_: 1 once the ranks have met, 2 when refused
    std::string refusal_;
    void* comm_ = nullptr;  // MPI_Comm (the engine's duplicate of MPI_COMM_WORLD)
    std::vector<Peer> peers_;
    std::vector<std::unique_ptr<Partial>> partial_;  // by rank
    std::vector<std::unique_ptr<Send>> sending_;
    std::shared_ptr<Role> role_;
    Clock::duration liveness_{};
    Clock::time_point last_check_{};   // the engine's: the last heartbeats_and_liveness
    LongReceive last_long_receive_{};  // under mu_

    std::atomic<int> cpu_{-1};
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Outgoing> outbox_;
    std::deque<Outgoing> sending_now_;  // the engine's: what send_queued took from the outbox
    std::vector<int> to_forsake_;
    bool stopping_ = false;
    Clock::time_point stop_by_{};  // rank 0 at exit: the last moment to wait for the byes
    std::thread thread_;

    std::thread helper_;
    std::mutex helper_mu_;
    std::condition_variable helper_cv_;
    std::deque<std::function<void()>> helper_queue_;
    bool helper_stop_ = false;
    bool helper_busy_ = false;  // running one
};

// A message of the given kind, to append to with an OutputArchive.
std::string begin_message(std::uint8_t kind);

// The worker ranks' role (src/mpi/server.cpp).
std::shared_ptr<Role> make_server(Engine& engine);
// Rank 0's role (src/mpi/root.cpp): routes results to the pools that sent the tasks.
std::shared_ptr<Role> make_root(Engine& engine);

}  // namespace mproc::detail::mpi
