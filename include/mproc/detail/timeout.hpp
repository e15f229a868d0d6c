// mproc/detail/timeout.hpp: the timeout argument every blocking call takes.
#pragma once

#include <chrono>
#include <optional>

namespace mproc {
// Python's `timeout=None` (wait forever) is an empty optional; `timeout=2.5` is 2.5s. Any
// std::chrono duration converts: `p.join(2s)`, `q.get(true, 500ms)`. A negative timeout is
// equivalent to a zero timeout: the call checks once and does not wait.
using Timeout = std::optional<std::chrono::duration<double>>;
}  // namespace mproc
