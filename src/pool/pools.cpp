// src/pool/pools.cpp: BasicPool's members that are not templates, compiled once for the process
// and the thread pool (pool.hpp declares these instantiations extern), not in every translation
// unit that makes a pool.

#include "mproc/pool.hpp"

namespace mproc::detail::pool {

template class BasicPool<ProcessCore>;
template class BasicPool<ThreadCore>;

}  // namespace mproc::detail::pool
