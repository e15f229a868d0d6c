// What the rest of the library asks of src/threading.cpp (not API).
#pragma once

namespace mproc::threading::detail {
// Python's threading._shutdown: waits for every non-daemon thread of this process but the
// caller. Run at normal exit, and by a child process after its target, as Python's does.
void wait_for_non_daemon_threads();
}  // namespace mproc::threading::detail
