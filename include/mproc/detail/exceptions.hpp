// mproc/detail/exceptions.hpp: exceptions as bytes, for results that cross processes (not API).
//
// What travels is the exception's dynamic type name, its what(), and for std::system_error
// (and its subclasses) the error code. The receiver rebuilds the same type when it is a
// standard exception, an mproc exception or one registered with MPROC_REGISTER_EXCEPTION, and
// a mproc::RemoteError naming the type otherwise.
#pragma once

#include <exception>
#include <string>

#include "mproc/detail/archive.hpp"

namespace mproc::detail {
void save_exception(OutputArchive& ar, const std::exception_ptr& e);
std::exception_ptr load_exception(InputArchive& ar);
// "<demangled type>: <what>", for reports.
std::string describe_exception(const std::exception_ptr& e);
}  // namespace mproc::detail
