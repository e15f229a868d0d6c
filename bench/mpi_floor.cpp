// mproc-mpi-floor: what bare MPI does between ranks 0 and 1, the floor under mproc-bench's mpi section
// (issue 16 compares mproc::mpi with mpi4py.futures, and both with this).
//   mpiexec -n 2 mproc-mpi-floor [--quick]
// One line per measure, "name median unit", so the lead's parser reads it as it reads the Python
// halves ("name value"); lines starting with '#' are context for a reader.
//   mpi_floor_rt_8b              s      an 8-byte message to rank 1 and back
//   mpi_floor_bw_1gib            GiB/s  1 GiB from rank 0 to rank 1 in one piece into a buffer
//                                       touched before the clock starts (the transport alone),
//                                       then an 8-byte reply (a task's argument, a small result)
//   mpi_floor_bw_1gib_64mib      GiB/s  the same in 64 MiB pieces, all posted at once
//   mpi_floor_bw_1gib_fresh      GiB/s  into fresh 4 KiB pages mapped for each message
//   mpi_floor_bw_1gib_fresh_huge GiB/s  into fresh pages with MADV_HUGEPAGE
//   mpi_floor_bw_over_2gib       GiB/s  2 GiB + 1 MiB in pieces of 1 GiB: past Open MPI 4.1's
//                                       int count, into a touched buffer
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <sys/mman.h>

#include "harness.hpp"

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kGiB = std::size_t{1} << 30;
constexpr int kDataTag = 1, kReplyTag = 2, kPingTag = 3;

// The median of `runs` round trips of 8 bytes, after `warmup` of them.
double ping_pong(MPI_Comm pair, int rank, int runs, int warmup) {
    std::uint64_t word = 7;
    std::vector<double> t;
    t.reserve(static_cast<std::size_t>(runs));
    for (int i = 0; i < warmup + runs; ++i) {
        if (rank == 0) {
            const auto a = Clock::now();
            MPI_Send(&word, 8, MPI_BYTE, 1, kPingTag, pair);
            MPI_Recv(&word, 8, MPI_BYTE, 1, kPingTag, pair, MPI_STATUS_IGNORE);
            if (i >= warmup) t.push_back(since(a));
        } else {
            MPI_Recv(&word, 8, MPI_BYTE, 0, kPingTag, pair, MPI_STATUS_IGNORE);
            MPI_Send(&word, 8, MPI_BYTE, 0, kPingTag, pair);
        }
    }
    return bench::median(t);
}

// The byte each run writes at the end of each piece, so that rank 1 sees a piece missing or
// misplaced, or left over from the previous run.
char marker(std::size_t pos, int run) { return static_cast<char>((pos + static_cast<std::size_t>(run)) % 251 + 1); }

// Where rank 1 receives: a buffer touched once before all runs (the transport alone), or fresh
// pages mapped inside the clock for each run, as a receiver that allocates per message does
// (its page faults count), with 4 KiB pages or transparent huge pages asked for by madvise.
enum class Receiver { touched, fresh, fresh_huge };

char* receive_buffer(Receiver how, std::vector<char>& touched, std::size_t bytes) {
    if (how == Receiver::touched) return touched.data();
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("mproc-mpi-floor: mmap");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (how == Receiver::fresh_huge) madvise(p, bytes, MADV_HUGEPAGE);  // a hint: may be refused
    return static_cast<char*>(p);
}

// One message of `bytes` from rank 0 to rank 1 as pieces of at most `piece` bytes, each piece's
// count an int (Open MPI 4.1 counts in int, so nothing larger goes in one call), all posted at
// once; then rank 1 replies 8 bytes. Returns rank 0's median seconds over `runs`.
double one_way(MPI_Comm pair, int rank, std::size_t bytes, std::size_t piece, Receiver how, int runs) {
    if (piece > static_cast<std::size_t>(INT_MAX)) {
        std::fprintf(stderr, "mproc-mpi-floor: a piece of %zu bytes does not fit an int count\n", piece);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    // Zero-filled, so every page of it is touched before the clock starts; a fresh receiver
    // maps its own instead.
    std::vector<char> buf(rank == 1 && how != Receiver::touched ? 0 : bytes);
    std::vector<MPI_Request> reqs;
    std::vector<double> t;
    for (int r = 0; r < runs + 1; ++r) {  // the first run is a warm-up
        if (rank == 0)
            for (std::size_t off = 0; off < bytes; off += piece) {
                const std::size_t last = std::min(off + piece, bytes) - 1;
                buf[last] = marker(last, r);
            }
        // Both ranks start together, as a worker rank already waits when a task is sent.
        MPI_Barrier(pair);
        reqs.clear();
        const auto a = Clock::now();
        char* const data = rank == 0 ? buf.data() : receive_buffer(how, buf, bytes);
        for (std::size_t off = 0; off < bytes; off += piece) {
            const int n = static_cast<int>(std::min(piece, bytes - off));
            reqs.emplace_back();
            if (rank == 0)
                MPI_Isend(data + off, n, MPI_BYTE, 1, kDataTag, pair, &reqs.back());
            else
                MPI_Irecv(data + off, n, MPI_BYTE, 0, kDataTag, pair, &reqs.back());
        }
        MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
        std::uint64_t reply = bytes;
        if (rank == 0) {
            MPI_Recv(&reply, 8, MPI_BYTE, 1, kReplyTag, pair, MPI_STATUS_IGNORE);
            if (r > 0) t.push_back(since(a));
            if (reply != bytes) {
                std::fprintf(stderr, "mproc-mpi-floor: the piece at byte %llu of %zu arrived wrong\n",
                             static_cast<unsigned long long>(reply), bytes);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        } else {
            for (std::size_t off = 0; off < bytes; off += piece) {
                const std::size_t last = std::min(off + piece, bytes) - 1;
                if (data[last] != marker(last, r)) reply = off;
            }
            MPI_Send(&reply, 8, MPI_BYTE, 0, kReplyTag, pair);
            if (how != Receiver::touched) munmap(data, bytes);
        }
    }
    return bench::median(t);
}

// The bandwidth of `bytes` in pieces of `piece`, printed by rank 0 as one line.
void bandwidth(MPI_Comm pair, int rank, const char* name, std::size_t bytes, std::size_t piece, Receiver how,
               int runs) {
    const double s = one_way(pair, rank, bytes, piece, how, runs);
    if (rank == 0) std::printf("%-28s %.4f GiB/s\n", name, static_cast<double>(bytes) / kGiB / s);
    std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) {
        std::fprintf(stderr, "mproc-mpi-floor: needs two ranks: mpiexec -n 2 %s\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const int rts = quick ? 2000 : 20000, runs = quick ? 3 : 7;

    char host[MPI_MAX_PROCESSOR_NAME] = {}, peer[MPI_MAX_PROCESSOR_NAME] = {};
    int len = 0;
    MPI_Get_processor_name(host, &len);
    if (rank == 1) MPI_Send(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, kPingTag, MPI_COMM_WORLD);
    if (rank == 0) {
        MPI_Recv(peer, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 1, kPingTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        std::printf("# mproc-mpi-floor: %d ranks; rank 0 on %s, rank 1 on %s; medians of %d round trips, %d transfers\n",
                    size, host, peer, rts, runs);
    }

    // Ranks past 1 take no part: they wait at the final barrier.
    MPI_Comm pair = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, rank <= 1 ? 0 : MPI_UNDEFINED, rank, &pair);
    if (pair != MPI_COMM_NULL) {
        const double rt = ping_pong(pair, rank, rts, rts / 10);
        if (rank == 0) std::printf("%-28s %.9f s\n", "mpi_floor_rt_8b", rt);
        std::fflush(stdout);
        bandwidth(pair, rank, "mpi_floor_bw_1gib", kGiB, kGiB, Receiver::touched, runs);
        bandwidth(pair, rank, "mpi_floor_bw_1gib_64mib", kGiB, 64 * kMiB, Receiver::touched, runs);
        bandwidth(pair, rank, "mpi_floor_bw_1gib_fresh", kGiB, kGiB, Receiver::fresh, runs);
        bandwidth(pair, rank, "mpi_floor_bw_1gib_fresh_huge", kGiB, kGiB, Receiver::fresh_huge, runs);
        bandwidth(pair, rank, "mpi_floor_bw_over_2gib", 2 * kGiB + kMiB, kGiB, Receiver::touched, runs);
        MPI_Comm_free(&pair);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
