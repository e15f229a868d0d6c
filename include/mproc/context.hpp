// mproc/context.hpp: the main guard, start methods and machine facts
// (Python: multiprocessing's module-level functions and multiprocessing.context).
//
// Start methods, as in Python:
//   "fork"       the child is a copy of the parent made by fork(2). Fastest; runs any callable,
//                capturing lambdas included. Only the forking thread exists in the child, so
//                forking while other threads hold locks (malloc aside) can deadlock the child;
//                that is why Python 3.14 moved its default away from fork.
//   "spawn"      the child runs this program's executable again and receives the function (as
//                a code offset) and its arguments (serialized). Needs mproc::init in main.
//   "forkserver" a small single-threaded server process, started on first use from this
//                executable, forks each child. As safe as spawn with threads around, faster to
//                start. Needs mproc::init in main.
// The default is "fork". The environment variable MPROC_START_METHOD, read by init(), sets
// another default without a code change (the test suite runs every process test under all
// three). get_context(method), in <mproc/mproc.hpp>, gives factories bound to one method
// whatever the default (Python: multiprocessing.get_context).
//
// None of these blocks: the start method is an atomic, the executable's path takes a mutex for
// a moment. Only init() in a spawn or forkserver child goes on to run the child's job.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mproc {

// The main guard (Python: `if __name__ == "__main__":`). Call it first in main. In the program
// itself it returns at once; in a child started with spawn or forkserver it runs that child's
// job and never returns. MPROC_START_METHOD naming no start method is not an exception: it
// says so on stderr and exits with status 2.
void init(int argc, char** argv);
// Whether init() has been called in this process.
bool initialized() noexcept;

// Sets the default start method. Setting it a second time throws std::logic_error unless force
// is true (Python: RuntimeError "context has already been set"). An unknown name throws
// std::invalid_argument.
void set_start_method(std::string_view method, bool force = false);
// The default start method; fixes it to "fork" if none was set (as Python does).
std::string get_start_method();
// With allow_none, empty when no method was set yet, and nothing is fixed.
std::optional<std::string> get_start_method(bool allow_none);
std::vector<std::string> get_all_start_methods();

namespace detail {
// An unknown start method: std::invalid_argument (Python: ValueError "cannot find context").
void check_start_method(std::string_view method);
// What init() runs last, in the program itself (never in a child role): mproc::mpi registers
// its own at static initialization, so that a program linked with it joins its MPI job there
// (a worker rank serves tasks and never returns). One hook; a second replaces the first.
using InitHook = void (*)(int argc, char** argv);
void set_init_hook(InitHook hook) noexcept;
}  // namespace detail

// The program run for spawn and forkserver children (Python: set_executable). It must be this
// same program (a copy of its binary, say): functions travel as offsets into it. Defaults to
// /proc/self/exe.
void set_executable(std::string path);
std::string get_executable();

// The number of CPUs in the system (Python: os.cpu_count).
int cpu_count() noexcept;
// The number of CPUs this process may run on, from its affinity mask (Python 3.13:
// os.process_cpu_count). The right default for worker counts.
int process_cpu_count() noexcept;

}  // namespace mproc
