// src/pool/gate.cpp: the lifecycle both pool cores share (CoreBase over Gate).

#include "mproc/detail/pool_core.hpp"
#include "pool/gate.hpp"

namespace mproc::detail::pool {

void CoreBase::check_accepting() const { gate_->check_accepting(); }
void CoreBase::stream_opened() { gate_->stream_opened(); }

void CoreBase::stream_closed() {
    gate_->stream_closed();
    gate_->wake();
}

void CoreBase::close() {
    gate_->close();
    gate_->wake();
}
}  // namespace mproc::detail::pool
