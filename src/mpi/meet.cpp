// src/mpi/meet.cpp: the ranks meet (engine.hpp): each worker rank's first message is its hello
// (build id, host, pid); rank 0 waits for every one and refuses a job whose ranks run another
// build of the program.

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mpi/engine.hpp"
#include "mpi/engine_shared.hpp"
#include "mpi/wire.hpp"
#include "mproc/detail/archive.hpp"

namespace mproc::detail::mpi {

bool Engine::hello_phase() {
    if (rank_ != root_) {
        std::string msg = begin_message(kHello);
        OutputArchive ar(msg);
        const Peer& self = peers_[static_cast<std::size_t>(rank_)];
        ar(self.build_id, self.host, self.pid);
        post(root_, std::move(msg));
        // Rank 0 is silent until every rank has joined: its silence counts from then.
        peers_[static_cast<std::size_t>(root_)].heard = Clock::now() + kJoinTimeout;
        return true;  // the server role reads kRefused, if rank 0 refuses this build
    }
    const auto deadline = Clock::now() + kJoinTimeout;
    const auto me = static_cast<std::size_t>(root_);
    const std::string& mine = peers_[me].build_id;
    std::vector<bool> met(static_cast<std::size_t>(size_), false);
    met[me] = true;
    int waiting = size_ - 1;
    while (waiting > 0) {
        if (Clock::now() > deadline) {
            std::string missing;
            for (int r = 0; r < size_; ++r)
                if (!met[static_cast<std::size_t>(r)]) missing.append(" ").append(std::to_string(r));
            std::fprintf(stderr, "mproc: MPI ranks%s did not join within %d s; ending the job\n", missing.c_str(),
                         static_cast<int>(kJoinTimeout.count()));
            std::fflush(stderr);
            MPI_Abort(comm_of(comm_), 1);
        }
        MPI_Message handle;
        MPI_Status st;
        int flag = 0;
        check(MPI_Improbe(MPI_ANY_SOURCE, kTag, comm_of(comm_), &flag, &handle, &st), "MPI_Improbe");
        if (!flag) {
            std::this_thread::sleep_for(kMinSleep);
            continue;
        }
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        std::string msg(static_cast<std::size_t>(count), '\0');
        check(MPI_Mrecv(msg.data(), count, MPI_BYTE, &handle, &st), "MPI_Mrecv");
        const auto src = static_cast<std::size_t>(st.MPI_SOURCE);
        if (msg.size() < 2 || msg[1] != static_cast<char>(kHello) || met[src]) {
            std::fprintf(stderr, "mproc: MPI rank %d sent something else than its hello; ending the job\n",
                         st.MPI_SOURCE);
            std::fflush(stderr);
            MPI_Abort(comm_of(comm_), 1);
        }
        Peer p;
        try {
            InputArchive ar(std::string_view(msg).substr(2));
            ar(p.build_id, p.host, p.pid);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "mproc: MPI rank %d sent a malformed hello (%s); ending the job\n", st.MPI_SOURCE,
                         e.what());
            std::fflush(stderr);
            MPI_Abort(comm_of(comm_), 1);
        }
        p.heard = Clock::now();
        {
            std::lock_guard lk(mu_);
            peers_[src] = p;
        }
        met[src] = true;
        --waiting;
    }
    // Every rank must run this very build: functions travel as addresses into it.
    std::string refusal;
    for (int r = 0; r < size_; ++r) {
        const Peer& p = peers_[static_cast<std::size_t>(r)];
        if (r != root_ && p.build_id != mine)
            refusal += "mproc: MPI rank " + std::to_string(r) + " on host " + p.host + " (pid " + std::to_string(p.pid) +
                       ") runs another build of the program (build id " + p.build_id + "; rank 0 on host " +
                       peers_[me].host + " runs " + mine + "): every rank must run the same executable\n";
    }
    if (refusal.empty()) return true;
    for (int r = 0; r < size_; ++r) {
        if (r == root_) continue;
        std::string msg = begin_message(kRefused);
        OutputArchive ar(msg);
        ar(refusal);
        post(r, std::move(msg));
    }
    send_queued();
    finish_sends(Clock::now() + kExitFlush);
    if (!owns_mpi_) {
        refusal_ = refusal;  // MPICommExecutor's constructor throws it
        return false;
    }
    std::fprintf(stderr, "%s", refusal.c_str());
    std::fflush(stderr);
    MPI_Comm_free(&comm_of(comm_));
    MPI_Finalize();
    std::_Exit(1);
}

}  // namespace mproc::detail::mpi
