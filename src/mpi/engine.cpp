// src/mpi/engine.cpp: the thread of a rank that calls MPI (engine.hpp).

#include "mpi/engine.hpp"
#include "mpi/engine_shared.hpp"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "mproc/detail/archive.hpp"
#include "mproc/errors.hpp"
#include "mpi/wire.hpp"
#include "platform/process.hpp"
#include "platform/system.hpp"
#include "platform/thread.hpp"
#include "spare_bytes.hpp"

namespace mproc::detail::mpi {

namespace {
// Frame bytes: a whole message, or the head of one sent in pieces (u64 message bytes and u64
// tail bytes follow, then optionally the u64 size of each of the tail's pieces; then the
// message's pieces, of kPiece bytes but the last, then the tail's, of kPiece bytes or as listed).
constexpr char kWhole = 0, kHead = 1;
// A message up to this long is handled on the engine's thread (when nothing waits for the
// helper): handling it is quick; a longer one's decoding or hand-off to a process pool is not.
constexpr std::size_t kInlineMax = std::size_t{64} << 10;
// A tail shorter than this goes inside its message (one MPI message beats two).
constexpr std::size_t kTailMin = std::size_t{64} << 10;
// After the last message the loop polls on for kSpin, then sleeps from kMinSleep doubling up
// to kMaxSleep between polls (kMaxIdleSleep after a second of nothing).
constexpr auto kSpin = std::chrono::microseconds(200);
// While the role waits for an answer over MPI (rank 0 with tasks out), it polls on this long:
// sleeping there puts a millisecond on a task's round trip whenever the machine is loaded.
constexpr auto kSpinExpecting = std::chrono::milliseconds(5);
constexpr auto kMaxSleep = std::chrono::microseconds(1000);
// A rank idle this long sleeps up to kMaxIdleSleep between polls: a task after a pause waits a
// few milliseconds more, and an idle rank costs a fifth as much.
constexpr auto kLongIdle = std::chrono::seconds(1);
constexpr auto kMaxIdleSleep = std::chrono::microseconds(5000);

Engine* g_root = nullptr;

Clock::duration liveness_from_env() {
    double s = 5.0;
    if (const char* e = std::getenv("MPROC_MPI_LIVENESS_TIMEOUT"); e && *e) {
        char* end = nullptr;
        const double v = std::strtod(e, &end);
        if (end != e && v > 0 && v < 1e6) s = v;
    }
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

[[noreturn]] void mpi_failed(const char* what, int code) {
    char msg[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(code, msg, &len);
    std::fprintf(stderr, "mproc: %s failed: %s\n", what, msg);
    std::fflush(stderr);
    std::_Exit(70);
}
}  // namespace

void check(int code, const char* what) {
    if (code != MPI_SUCCESS) mpi_failed(what, code);
}

// A message in pieces from one rank: its buffers being made, then its pieces arriving; what
// that rank sends meanwhile waits in `held`, so that messages are handled in order.
struct Engine::Partial {
    enum State { None, Allocating, Receiving } state = None;
    std::string msg, tail;
    std::thread allocator;
    std::atomic<bool> allocated{false};
    std::vector<MPI_Request> requests;  // the pieces being received now (kPiecesAtOnce)
    std::vector<std::pair<char*, int>> pieces;  // every piece of msg and tail, in order
    std::vector<std::size_t> tail_pieces;       // the tail's, when the head listed them
    std::size_t next = 0;                       // the first piece not asked for yet
    std::deque<std::string> held;
    // For last_long_receive(): when the first pieces were asked for, and the longest the
    // engine has gone since without its heartbeats and liveness checks.
    Clock::time_point receiving_since{};
    Clock::duration longest_gap{};
};

struct Engine::Send {
    int dest = 0;
    std::string head;  // the head frame of a message in pieces
    std::string body;
    std::string tail;
    std::shared_ptr<const Loan> loan;  // runs of the tail sent from where they are
    std::vector<MPI_Request> requests;
};

namespace {
// The tail's pieces, in order: each of `tail` and of the loan's runs (inserted at their places)
// split at kPiece. Without a loan, the receiver splits the tail the same way by itself.
std::vector<std::pair<const char*, std::size_t>> tail_pieces(const std::string& tail, const Loan* loan) {
    std::vector<std::pair<const char*, std::size_t>> pieces;
    auto add = [&](const char* data, std::size_t n) {
        for (std::size_t off = 0; off < n; off += kPiece) pieces.emplace_back(data + off, std::min(kPiece, n - off));
    };
    std::size_t from = 0;
    if (loan)
        for (const Lent& run : loan->runs) {
            add(tail.data() + from, run.at - from);
            add(run.data, run.size);
            from = run.at;
        }
    add(tail.data() + from, tail.size() - from);
    return pieces;
}
}  // namespace

std::string begin_message(std::uint8_t kind) {
    std::string s;
    s.reserve(64);
    s.push_back(kWhole);
    s.push_back(static_cast<char>(kind));
    return s;
}

bool Engine::launched_by_mpiexec() noexcept {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
        if (const char* e = std::getenv(v); e && *e) return true;
    return false;
}

Engine* Engine::root() noexcept { return g_root; }

Peer Engine::peer(int r) const {
    // Host, pid and build id are set before the engine is published and never change; lost
    // is written under mu_. The times belong to the engine's thread alone.
    std::lock_guard lk(mu_);
    const Peer& p = peers_.at(static_cast<std::size_t>(r));
    Peer copy;
    copy.host = p.host;
    copy.pid = p.pid;
    copy.build_id = p.build_id;
    copy.lost = p.lost;
    return copy;
}

std::string Engine::describe(int r) const {
    const Peer p = peer(r);
    return "rank " + std::to_string(r) + " on host " + (p.host.empty() ? "?" : p.host) + " (pid " +
           std::to_string(p.pid) + ")";
}

void Engine::post(int dest, std::string msg, std::string tail, std::shared_ptr<const Loan> loan) {
    if (loan && loan->runs.empty()) loan.reset();
    if (!loan && !tail.empty() && tail.size() < kTailMin) {
        msg.append(tail);
        tail.clear();
    }
    {
        std::lock_guard lk(mu_);
        outbox_.push_back(Outgoing{dest, std::move(msg), std::move(tail), std::move(loan)});
    }
    cv_.notify_one();
}

void Engine::forsake(int r) {
    // The engine's thread marks it (it alone writes the peers' state), at its next round.
    std::lock_guard lk(mu_);
    to_forsake_.push_back(r);
}

std::string Engine::liveness_text() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", std::chrono::duration<double>(liveness_).count());
    return buf;
}

void Engine::set_role(std::shared_ptr<Role> role) {
    std::lock_guard lk(mu_);
    role_ = std::move(role);
}

void Engine::join_job() {
    if (!launched_by_mpiexec()) return;
    // A program that initialized MPI before mproc::init runs MPI itself (MPICommExecutor).
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    // Between ranks of one host, a long message is copied into and out of Open MPI's
    // shared-memory fragments by both sides at once, not read across by the receiver (CMA,
    // process_vm_readv, the default): on this project's VM a bare 1 GiB send ran at 7.0 GiB/s
    // so against 5.2, and CMA reads a buffer of 4 KiB pages (a long argument sent from the
    // caller's own string: Chunk::loan) slower still. Set here, before any thread of ours
    // starts; a value the user set, in the environment or on mpiexec's line (which sets the
    // same variable), stands.
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
    auto* e = new Engine;  // lives as long as the process: exit hooks and pools refer to it
    // A worker rank serves in this thread; rank 0 runs the engine in a thread of its own and
    // waits here until the ranks have met (run() publishes g_root then, or exits the process).
    int world_rank = -1;
    if (const char* r = std::getenv("OMPI_COMM_WORLD_RANK")) world_rank = std::atoi(r);
    else if (const char* r2 = std::getenv("PMIX_RANK")) world_rank = std::atoi(r2);
    if (world_rank > 0) {
        e->run(false);
        std::exit(e->role_->exit_code());
    }
    e->thread_ = std::thread([e] { e->run(true); });
    std::unique_lock lk(e->mu_);
    e->cv_.wait(lk, [&] { return e->met_ != 0; });  // refused: run() ends the process
    g_root = e;
}

void Engine::run(bool root) {
    // Rank 0's engine runs on a thread of its own: named, for ps and debuggers (and a test
    // that places it). A worker rank's is its main thread, which keeps the program's name.
    if (root) platform::set_thread_name("mproc-mpi");
    if (owns_mpi_) {
        int provided = 0;
        check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_of(comm_)), "MPI_Comm_dup");
        setup();
    }
    if (!root && rank_ == root_) {
        std::fprintf(stderr, "mproc: MPI rank 0 is not the program's first rank\n");
        std::_Exit(70);
    }
    set_role(root ? make_root(*this) : make_server(*this));
    const bool met = hello_phase();
    {
        std::lock_guard lk(mu_);
        met_ = met ? 1 : 2;
    }
    cv_.notify_all();
    if (met) {
        helper_ = std::thread([this] { helper_loop(); });
        loop();
        stop_helper();  // what arrived is handled (a worker rank's pools end there on kExit)
        if (!root) post(root_, begin_message(kBye));
        send_queued();
        finish_sends(Clock::now() + kExitFlush);
    }
    // Sends to a lost rank never complete; MPI_Finalize is told nothing of them.
    MPI_Comm_free(&comm_of(comm_));
    if (owns_mpi_) MPI_Finalize();
}

void Engine::setup() {
    MPI_Comm_set_errhandler(comm_of(comm_), MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_of(comm_), &rank_);
    MPI_Comm_size(comm_of(comm_), &size_);
    liveness_ = liveness_from_env();
    std::lock_guard lk(mu_);
    peers_.resize(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r) partial_.push_back(std::make_unique<Partial>());
    Peer& self = peers_[static_cast<std::size_t>(rank_)];
    self.host = platform::host_name();
    self.pid = platform::get_pid();
    self.build_id = platform::program_build_id();
}

Engine::~Engine() {
    for (auto& p : partial_)
        if (p->allocator.joinable()) p->allocator.join();
}

Engine* Engine::over(void* comm, int root) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
        throw std::logic_error("mproc: MPICommExecutor needs MPI initialized by the program (MPI_Init_thread)");
    int level = 0;
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_MULTIPLE)
        throw std::invalid_argument(
            "mproc: MPICommExecutor runs its MPI calls in a thread of its own beside the program's: MPI must be "
            "initialized with MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...)");
    auto e = std::make_unique<Engine>();
    e->owns_mpi_ = false;
    e->root_ = root;
    check(MPI_Comm_dup(*static_cast<MPI_Comm*>(comm), &comm_of(e->comm_)), "MPI_Comm_dup");
    e->setup();
    if (root < 0 || root >= e->size_) {
        MPI_Comm_free(&comm_of(e->comm_));
        throw std::invalid_argument("mproc: MPICommExecutor's root " + std::to_string(root) + " is not a rank of the communicator");
    }
    if (e->rank_ != root) {
        e->run(false);
        if (e->role_->exit_code() != 0) throw ProcessError("mproc: rank " + std::to_string(root) + " refused this rank (another build of the program)");
        return nullptr;
    }
    e->thread_ = std::thread([p = e.get()] { p->run(true); });
    std::unique_lock lk(e->mu_);
    e->cv_.wait(lk, [&] { return e->met_ != 0; });
    if (e->met_ == 2) {
        lk.unlock();
        e->thread_.join();
        throw ProcessError(e->refusal_);
    }
    return e.release();
}

void Engine::loop() {
    auto last_activity = Clock::now();
    Clock::duration sleep = kMinSleep;
    for (;;) {
        cpu_.store(platform::current_cpu(), std::memory_order_relaxed);
        bool active = send_queued();
        active = receive_all() || active;
        active = role_->poll() || active;
        // A message on its way needs this side's polls to move (over TCP each poll writes or
        // reads what the socket takes; over shared memory a piece is copied inside the
        // receiver's calls): polls go on without sleeping, but yield the CPU between them, to
        // the thread that makes the other side's buffer, for one (a spinning engine halved it
        // on two cores: mpi.scenario.large took 186 s). A buffer being made here is waited for
        // asleep, polls at most kMaxSleep apart.
        // Nothing is waited for from a lost peer.
        bool moving = std::any_of(sending_.begin(), sending_.end(), [&](const std::unique_ptr<Send>& x) {
            return !peers_[static_cast<std::size_t>(x->dest)].lost;
        });
        bool allocating = false;
        for (std::size_t r = 0; r < partial_.size(); ++r) {
            if (peers_[r].lost) continue;
            moving = moving || partial_[r]->state == Partial::Receiving;
            allocating = allocating || partial_[r]->state == Partial::Allocating;
        }
        const auto now = Clock::now();
        heartbeats_and_liveness(now);
        bool rest = false;
        {
            std::unique_lock lk(mu_);
            if (role_->done() || (stopping_ && outbox_.empty() && (all_said_bye() || now > stop_by_))) break;
            if (active) {
                last_activity = now;
                sleep = kMinSleep;
                continue;
            }
            if (!outbox_.empty()) continue;  // a heartbeat just posted: sent next round
            if (moving || now - last_activity < (role_->expecting() ? kSpinExpecting : kSpin)) {
                lk.unlock();
                std::this_thread::yield();
                continue;
            }
            rest = true;
        }
        if (rest) {
            // The role hears it first, without mu_ (its pools' threads take mu_ to post); a
            // message posted meanwhile is in the outbox, and the wait returns at once.
            role_->resting(true);
            {
                std::unique_lock lk(mu_);
                cv_.wait_for(lk, sleep, [&] { return !outbox_.empty() || stopping_; });
            }
            role_->resting(false);
        }
        sleep = std::min<Clock::duration>(sleep * 2,
                                          now - last_activity > kLongIdle && !allocating ? kMaxIdleSleep : kMaxSleep);
    }
}

bool Engine::send_queued() {
    // An idle round allocates nothing (it runs a thousand times a second).
    std::deque<Outgoing>& out = sending_now_;
    {
        std::lock_guard lk(mu_);
        if (!outbox_.empty()) out.swap(outbox_);
        for (int r : to_forsake_) {
            Peer& p = peers_.at(static_cast<std::size_t>(r));
            p.lost = p.forsaken = true;
        }
        to_forsake_.clear();
    }
    // Heartbeats are no work: the loop may sleep on after sending one.
    const bool any = std::any_of(out.begin(), out.end(), [](const Outgoing& o) {
        return !(o.msg.size() == 2 && o.msg[1] == static_cast<char>(kAlive));
    });
    const auto now = Clock::now();
    MPI_Comm c = comm_of(comm_);
    for (auto& o : out) {
        Peer& p = peers_[static_cast<std::size_t>(o.dest)];
        // Nothing goes to a silent rank (over TCP a send to a dead one never completes); a
        // forsaken one is still told to exit, so that the job can end.
        if (p.lost && !(p.forsaken && o.msg.size() >= 2 && o.msg[1] == static_cast<char>(kExit))) continue;
        p.told = now;
        auto s = std::make_unique<Send>();
        s->dest = o.dest;
        s->body = std::move(o.msg);
        s->tail = std::move(o.tail);
        s->loan = std::move(o.loan);
        auto isend = [&](const char* data, std::size_t n, int tag) {
            s->requests.emplace_back();
            check(MPI_Isend(data, static_cast<int>(n), MPI_BYTE, o.dest, tag, c, &s->requests.back()), "MPI_Isend");
        };
        if (s->tail.empty() && !s->loan && s->body.size() <= kPiece) {
            isend(s->body.data(), s->body.size(), kTag);
        } else {
            // The head: u64 message bytes, u64 tail bytes, and with a loan the size of each of
            // the tail's pieces (its runs' boundaries are not at multiples of kPiece).
            const auto pieces = tail_pieces(s->tail, s->loan.get());
            std::uint64_t tail_bytes = 0;
            for (const auto& p : pieces) tail_bytes += p.second;
            const std::uint64_t sizes[2] = {s->body.size(), tail_bytes};
            s->head.push_back(kHead);
            s->head.append(reinterpret_cast<const char*>(sizes), sizeof sizes);
            if (s->loan)
                for (const auto& p : pieces) {
                    const std::uint64_t n = p.second;
                    s->head.append(reinterpret_cast<const char*>(&n), sizeof n);
                }
            isend(s->head.data(), s->head.size(), kTag);
            for (std::size_t off = 0; off < s->body.size(); off += kPiece)
                isend(s->body.data() + off, std::min(kPiece, s->body.size() - off), kPieceTag);
            for (const auto& p : pieces) isend(p.first, p.second, kPieceTag);
        }
        sending_.push_back(std::move(s));
    }
    out.clear();
    // Completed sends free their buffers; those to a lost rank may never complete, and are
    // kept (MPI may still read them). A message other than a heartbeat that completes is work.
    bool completed = false;
    std::erase_if(sending_, [&](const std::unique_ptr<Send>& s) {
        int done = 0;
        MPI_Testall(static_cast<int>(s->requests.size()), s->requests.data(), &done, MPI_STATUSES_IGNORE);
        if (done && !(s->body.size() == 2 && s->body[1] == static_cast<char>(kAlive))) completed = true;
        if (done) {
            recycle_bytes(std::move(s->body));  // a long message's buffers serve the next one
            recycle_bytes(std::move(s->tail));
            if (s->loan) defer([loan = std::move(s->loan)]() mutable { loan.reset(); });
        }
        return done != 0;
    });
    return any || completed;
}

bool Engine::receive_all() {
    bool any = false;  // heartbeats aside: they are no work, and the loop may sleep on
    for (;;) {
        MPI_Message handle;
        MPI_Status st;
        int flag = 0;
        check(MPI_Improbe(MPI_ANY_SOURCE, kTag, comm_of(comm_), &flag, &handle, &st), "MPI_Improbe");
        if (!flag) break;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        const int src = st.MPI_SOURCE;
        std::string msg(static_cast<std::size_t>(count), '\0');
        check(MPI_Mrecv(msg.data(), count, MPI_BYTE, &handle, &st), "MPI_Mrecv");
        Peer& p = peers_[static_cast<std::size_t>(src)];
        if (p.lost) continue;  // a rank taken for dead stays dead: what it held has failed
        p.heard = Clock::now();
        if (msg.size() == 2 && msg[1] == static_cast<char>(kAlive)) continue;
        any = true;
        if (msg.size() == 2 && msg[1] == static_cast<char>(kBye)) {
            p.bye = true;
            continue;
        }
        Partial& part = *partial_[static_cast<std::size_t>(src)];
        if (part.state != Partial::None) {
            part.held.push_back(std::move(msg));  // after the message in pieces, in order
            continue;
        }
        take(src, std::move(msg));
    }
    for (int src = 0; src < size_; ++src) any = progress_pieces(src) || any;
    return any;
}

// A whole message, or the head of one in pieces: its buffers are made on a thread of its own
// (touching gigabytes of fresh memory takes seconds, which the engine's polls and heartbeats
// cannot wait), then its pieces are received into them, on their own tag.
void Engine::take(int src, std::string msg) {
    constexpr std::size_t kHeadBytes = 1 + 2 * sizeof(std::uint64_t);
    if (msg.size() < kHeadBytes || msg[0] != kHead) return hand_over(src, std::move(msg), {});
    Partial& part = *partial_[static_cast<std::size_t>(src)];
    std::uint64_t sizes[2] = {};
    std::memcpy(sizes, msg.data() + 1, sizeof sizes);
    // The tail's pieces, when the head lists them (a tail with lent runs): they must add up
    // to the tail, each a piece MPI can count; else this is not what a rank of ours sends.
    part.tail_pieces.clear();
    if (msg.size() > kHeadBytes) {
        const std::size_t n = (msg.size() - kHeadBytes) / sizeof(std::uint64_t);
        std::uint64_t sum = 0;
        bool ok = (msg.size() - kHeadBytes) % sizeof(std::uint64_t) == 0;
        for (std::size_t i = 0; ok && i < n; ++i) {
            std::uint64_t piece = 0;
            std::memcpy(&piece, msg.data() + kHeadBytes + i * sizeof piece, sizeof piece);
            ok = piece > 0 && piece <= kPiece && piece <= sizes[1] - sum;
            sum += piece;
            part.tail_pieces.push_back(static_cast<std::size_t>(piece));
        }
        if (!ok || sum != sizes[1]) {
            part.tail_pieces.clear();
            return hand_over(src, begin_message(0), {});
        }
    }
    part.state = Partial::Allocating;
    part.allocated.store(false);
    part.allocator = std::thread([&part, sizes] {
        resize_for_overwrite(part.msg, sizes[0]);  // the spare, or fresh huge pages
        resize_for_overwrite(part.tail, sizes[1]);
        part.allocated.store(true, std::memory_order_release);
    });
}

bool Engine::progress_pieces(int src) {
    Partial& part = *partial_[static_cast<std::size_t>(src)];
    if (part.state == Partial::None) return false;
    if (part.state == Partial::Allocating) {
        if (!part.allocated.load(std::memory_order_acquire)) return false;  // in flight: see loop()
        part.allocator.join();
        part.pieces.clear();
        part.next = 0;
        for (std::size_t off = 0; off < part.msg.size(); off += kPiece)
            part.pieces.emplace_back(part.msg.data() + off, static_cast<int>(std::min(kPiece, part.msg.size() - off)));
        if (part.tail_pieces.empty()) {
            for (std::size_t off = 0; off < part.tail.size(); off += kPiece)
                part.pieces.emplace_back(part.tail.data() + off, static_cast<int>(std::min(kPiece, part.tail.size() - off)));
        } else {
            std::size_t off = 0;
            for (std::size_t n : part.tail_pieces) {
                part.pieces.emplace_back(part.tail.data() + off, static_cast<int>(n));
                off += n;
            }
        }
        part.state = Partial::Receiving;
        part.receiving_since = Clock::now();
        part.longest_gap = {};
    }
    Peer& p = peers_[static_cast<std::size_t>(src)];
    int done = 0;
    for (;;) {
        if (part.requests.empty()) {
            // The next few pieces are asked for only now: see kPiecesAtOnce.
            for (; part.next < part.pieces.size() && part.requests.size() < kPiecesAtOnce; ++part.next) {
                part.requests.emplace_back();
                check(MPI_Irecv(part.pieces[part.next].first, part.pieces[part.next].second, MPI_BYTE, src, kPieceTag,
                                comm_of(comm_), &part.requests.back()),
                      "MPI_Irecv");
            }
        }
        const int rc = MPI_Testall(static_cast<int>(part.requests.size()), part.requests.data(), &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            // Pieces of other sizes than the head announced: not what a rank of ours sends.
            part.msg = begin_message(0);
            part.tail.clear();
            done = 1;
            break;
        }
        if (!done) return false;  // in flight: see loop()
        part.requests.clear();
        p.heard = Clock::now();  // a piece came: the sender lives
        if (part.next == part.pieces.size()) break;
        return true;  // the next pieces are asked for next round, after heartbeats and checks
    }
    p.heard = Clock::now();
    note_gap(part, p.heard);
    {
        std::lock_guard lk(mu_);
        last_long_receive_ = {part.msg.size() + part.tail.size(), p.heard - part.receiving_since, part.longest_gap};
    }
    std::string msg = std::move(part.msg), tail = std::move(part.tail);
    std::deque<std::string> held = std::move(part.held);
    part.requests.clear();
    part.pieces.clear();
    part.held.clear();
    part.state = Partial::None;
    if (p.lost) return true;
    hand_over(src, std::move(msg), std::move(tail));
    // What came meanwhile, in order; another message in pieces stops the release.
    while (!held.empty() && part.state == Partial::None) {
        take(src, std::move(held.front()));
        held.pop_front();
    }
    for (auto& m : held) part.held.push_back(std::move(m));
    return true;
}

void Engine::note_gap(Partial& part, Clock::time_point now) const {
    part.longest_gap = std::max(part.longest_gap, now - std::max(last_check_, part.receiving_since));
}

Engine::LongReceive Engine::last_long_receive() const {
    std::lock_guard lk(mu_);
    return last_long_receive_;
}

void Engine::heartbeats_and_liveness(Clock::time_point now) {
    for (auto& part : partial_)
        if (part->state == Partial::Receiving) note_gap(*part, now);
    last_check_ = now;
    for (int r = 0; r < size_; ++r) {
        if (r == rank_ || (rank_ != root_ && r != root_)) continue;
        Peer& p = peers_[static_cast<std::size_t>(r)];
        if (p.lost) continue;
        if (now - p.heard > liveness_) {
            {
                std::lock_guard lk(mu_);
                p.lost = true;
            }
            defer([this, r] { role_->on_lost(r); });
            continue;
        }
        if (now - p.told >= kHeartbeat) post(r, begin_message(kAlive));
    }
}

void Engine::hand_over(int src, std::string msg, std::string tail) {
    // A short message is handled here and now (one hand-off fewer on a task's round trip),
    // unless one before it still waits for the helper: messages are handled in order.
    bool idle = false;
    if (tail.empty() && msg.size() <= kInlineMax) {
        std::lock_guard lk(helper_mu_);
        idle = helper_queue_.empty() && !helper_busy_;
    }
    if (idle) return role_->on_message(src, msg, tail);
    // A long message's buffers, once handled, are kept for the next one (spare_bytes.hpp);
    // a role that keeps them has moved them out.
    defer([this, src, m = std::move(msg), t = std::move(tail)]() mutable {
        role_->on_message(src, m, t);
        recycle_bytes(std::move(m));
        recycle_bytes(std::move(t));
    });
}

void Engine::defer(std::function<void()> f) {
    {
        std::lock_guard lk(helper_mu_);
        helper_queue_.push_back(std::move(f));
    }
    helper_cv_.notify_one();
}

void Engine::helper_loop() {
    std::unique_lock lk(helper_mu_);
    for (;;) {
        helper_cv_.wait(lk, [&] { return !helper_queue_.empty() || helper_stop_; });
        if (helper_queue_.empty()) return;
        auto f = std::move(helper_queue_.front());
        helper_queue_.pop_front();
        helper_busy_ = true;
        lk.unlock();
        f();
        lk.lock();
        helper_busy_ = false;
    }
}

void Engine::stop_helper() {
    {
        std::lock_guard lk(helper_mu_);
        helper_stop_ = true;
    }
    helper_cv_.notify_one();
    if (helper_.joinable()) helper_.join();
}

bool Engine::all_said_bye() const {
    for (int r = 0; r < size_; ++r) {
        if (r == root_) continue;
        const Peer& p = peers_[static_cast<std::size_t>(r)];
        if (!p.bye && !p.lost) return false;
    }
    return true;
}

void Engine::finish_sends(Clock::time_point until) {
    while (!sending_.empty() && Clock::now() < until) {
        send_queued();
        std::this_thread::sleep_for(kMinSleep);
    }
}

void Engine::stop() noexcept {
    if (!thread_.joinable()) return;
    for (int r = 0; r < size_; ++r)
        if (r != root_) post(r, begin_message(kExit));
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
        stop_by_ = Clock::now() + kByeTimeout;
    }
    cv_.notify_all();
    thread_.join();
}

}  // namespace mproc::detail::mpi
