// mproc/detail/code_address.hpp: a function's address as (loaded module, offset) (not API).
//
// A child started with spawn or forkserver runs the same executable again, so every function
// of the parent exists in it, but at another address (ASLR). An address is therefore sent as
// the module that contains it (the executable, or a shared library by the name it was loaded
// under) plus the offset from that module's load address, and turned back into an address in
// the receiver. This is how functions and captureless lambdas reach other processes without
// registration; the same holds for MPI ranks, which run the same binary.
#pragma once

#include <cstdint>
#include <string>

namespace mproc::detail {

struct CodeAddress {
    std::string module;  // "" for the main executable
    std::uint64_t offset = 0;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(module, offset);
    }
};

// Throws std::logic_error when p is not inside an executable segment of a loaded module.
CodeAddress encode_code_address(const void* p);
// Throws SerializationError when the module is not loaded (and cannot be) or the offset falls
// outside its executable segments.
const void* decode_code_address(const CodeAddress& a);

template <class Fn>
CodeAddress encode_function(Fn* f) {
    return encode_code_address(reinterpret_cast<const void*>(f));
}
template <class Fn>
Fn* decode_function(const CodeAddress& a) {
    return reinterpret_cast<Fn*>(const_cast<void*>(decode_code_address(a)));
}

}  // namespace mproc::detail
