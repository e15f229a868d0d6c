// src/mpi/mpi.cpp: mproc/mpi.hpp's free functions and constructors, and the hook by which
// mproc::init joins the MPI job (a program linked with mproc::mpi, started by mpiexec).

#include "mproc/mpi.hpp"

#include "mpi/engine.hpp"
#include "platform/process.hpp"
#include "platform/system.hpp"

namespace mproc::mpi {

namespace {
using detail::mpi::Engine;

void join_at_init(int, char**) { Engine::join_job(); }
// Registered when this file is linked in, which any program that makes an MPI pool does.
const bool g_hooked = (mproc::detail::set_init_hook(&join_at_init), true);

// The options an executor's and a pool's cores share; `ranks` is max_workers or processes.
template <class Options>
detail::pool::MpiCoreOptions common_options(const Options& o, std::optional<int> ranks) {
    detail::pool::MpiCoreOptions c;
    c.ranks = ranks;
    c.tasks_per_rank = o.tasks_per_rank;
    c.initializer = o.initializer;
    c.task_timeout = o.task_timeout;
    c.max_result_bytes = o.max_result_bytes;
    return c;
}
detail::pool::MpiCoreOptions core_options(const MPIPoolExecutorOptions& o, Engine* engine = nullptr) {
    detail::pool::MpiCoreOptions c = common_options(o, o.max_workers);
    c.engine = engine;
    return c;
}
detail::pool::MpiCoreOptions core_options(const PoolOptions& o) {
    detail::pool::MpiCoreOptions c = common_options(o, o.processes);
    c.maxtasksperchild = o.maxtasksperchild;
    return c;
}
}  // namespace

int rank() noexcept {
    const Engine* e = Engine::root();
    if (e) return e->rank();
    return 0;  // a worker rank never returns from mproc::init
}
int world_size() noexcept {
    const Engine* e = Engine::root();
    return e ? e->size() : 1;
}
bool in_job() noexcept { return Engine::root() != nullptr; }
std::string host_of(int r) {
    const Engine* e = Engine::root();
    if (!e || r < 0 || r >= e->size()) return platform::host_name();
    return e->peer(r).host;
}

long pid_of(int r) {
    const Engine* e = Engine::root();
    if (!e || r < 0 || r >= e->size()) return static_cast<long>(platform::get_pid());
    return static_cast<long>(e->peer(r).pid);
}

MPIPoolExecutor::MPIPoolExecutor(MPIPoolExecutorOptions options)
    : MPIPoolExecutor(std::make_unique<detail::pool::MpiCore>(core_options(options))) {}

MPIPoolExecutor::MPIPoolExecutor(std::unique_ptr<detail::pool::MpiCore>&& core)
    : MPIPoolExecutor(core.get(), std::move(core)) {}

MPIPoolExecutor::MPIPoolExecutor(const detail::pool::MpiCore* raw, std::unique_ptr<detail::pool::MpiCore>&& core)
    : Executor(std::move(core)), core_(raw) {
    (void)g_hooked;
}

bool MPIPoolExecutor::distributed() const noexcept { return core_->distributed(); }

MPICommExecutor::MPICommExecutor(MPI_Comm comm, int root, MPIPoolExecutorOptions options) {
    engine_ = Engine::over(&comm, root);
    if (!engine_) return;  // a serving rank: root's executor has ended
    try {
        executor_.reset(new MPIPoolExecutor(std::make_unique<detail::pool::MpiCore>(core_options(options, engine_))));
    } catch (...) {
        engine_->stop();
        delete engine_;
        throw;
    }
}

MPICommExecutor::~MPICommExecutor() {
    executor_.reset();
    if (engine_) {
        engine_->stop();
        delete engine_;
    }
}

Pool::Pool(PoolOptions options)
    : BasicPool(std::make_unique<detail::pool::MpiCore>(core_options(options))) {}

}  // namespace mproc::mpi
