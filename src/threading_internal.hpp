// What the rest of the library asks of src/threading.cpp (not API).
#pragma once

#include <string>

namespace mproc::threading::detail {
// Python's threading._shutdown: waits for every non-daemon thread of this process but the
// caller. Run at normal exit, and by a child process after its target, as Python's does.
void wait_for_non_daemon_threads();
// Makes the calling thread, which mproc::threading did not start (a thread pool's worker), a
// threading thread of this name: current_thread(), enumerate() and excepthook see it so, as
// Python's ThreadPoolExecutor workers are threading.Thread objects. Daemonic: the exit does not
// wait for it (its pool is stopped or joined by its owner). Call first thing in the thread.
void adopt_current_thread(std::string name);
}  // namespace mproc::threading::detail
