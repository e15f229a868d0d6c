// One MPI job across the fake hosts of scripts/mpi_hosts.sh (tests/mpi/netns.cmake runs it):
// every rank reports its rank and processor name, ping-pongs with rank 0 over the network, and
// rank 0 checks that ranks placed on different hosts saw different processor names, i.e. that
// the job really spans hosts and the TCP path between them carries messages.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

namespace {

// Untimed rounds first: the first messages between two ranks also open their TCP connection.
constexpr int kWarmup = 100, kRounds = 1000;
constexpr int kNameTag = 1, kPingTag = 2;

int fail(const char* what) {
    std::fprintf(stderr, "netns_hello: %s\n", what);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0, len = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    MPI_Get_processor_name(name, &len);
    std::printf("rank %d of %d on %s\n", rank, size, name);
    std::fflush(stdout);

    if (rank != 0) {
        MPI_Send(name, len + 1, MPI_CHAR, 0, kNameTag, MPI_COMM_WORLD);
        for (int i = 0; i < kWarmup + kRounds; ++i) {
            int v = 0;
            MPI_Recv(&v, 1, MPI_INT, 0, kPingTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            ++v;
            MPI_Send(&v, 1, MPI_INT, 0, kPingTag, MPI_COMM_WORLD);
        }
        MPI_Finalize();
        return 0;
    }

    if (size < 2) return fail("needs at least 2 ranks");
    std::vector<std::string> names{name};
    for (int r = 1; r < size; ++r) {
        char other[MPI_MAX_PROCESSOR_NAME] = {};
        MPI_Recv(other, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, r, kNameTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        names.emplace_back(other);
    }
    for (int r = 1; r < size; ++r) {
        double start = MPI_Wtime();
        for (int i = 0; i < kWarmup + kRounds; ++i) {
            if (i == kWarmup) start = MPI_Wtime();
            int v = i, back = -1;
            MPI_Send(&v, 1, MPI_INT, r, kPingTag, MPI_COMM_WORLD);
            MPI_Recv(&back, 1, MPI_INT, r, kPingTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (back != i + 1) return fail("a ping-pong reply carried the wrong value");
        }
        std::printf("rank 0 <-> rank %d (%s): %.1f us per round trip\n", r, names[r].c_str(),
                    (MPI_Wtime() - start) / kRounds * 1e6);
    }
    // mpi_hosts.sh places one rank per host unless told otherwise; with more ranks than hosts,
    // as many distinct names as hosts is what a span over every host looks like.
    const int hosts = argc > 1 ? std::atoi(argv[1]) : size;
    const std::set<std::string> distinct(names.begin(), names.end());
    std::printf("%zu distinct processor names over %d ranks, %d hosts expected\n", distinct.size(), size, hosts);
    if (static_cast<int>(distinct.size()) != hosts) return fail("the ranks did not span the expected hosts");
    MPI_Finalize();
    return 0;
}
