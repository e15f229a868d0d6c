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

class OutputArchive;
class InputArchive;

struct CodeAddress {
    std::string module;  // "" for the main executable
    std::uint64_t offset = 0;
};

// Throws std::logic_error when p is not inside an executable segment of a loaded module.
CodeAddress encode_code_address(const void* p);
// Throws SerializationError when the module is not loaded (and cannot be) or the offset falls
// outside its executable segments.
const void* decode_code_address(const CodeAddress& a);

// A function's address in its wire form (the CodeAddress's module, then its offset), written and
// read out of line: every pool call and process target carries one, and instantiating the
// archives' machinery for CodeAddress in each translation unit that sends a function cost a
// tenth of a second of its compile time (issue 18). load_code_address throws as
// decode_code_address does, and SerializationError on a malformed message.
void save_code_address(OutputArchive& ar, const void* p);
const void* load_code_address(InputArchive& ar);
template <class Fn>
void save_function(OutputArchive& ar, Fn* f) {
    save_code_address(ar, reinterpret_cast<const void*>(f));
}
template <class Fn>
Fn* load_function(InputArchive& ar) {
    return reinterpret_cast<Fn*>(const_cast<void*>(load_code_address(ar)));
}

template <class Fn>
CodeAddress encode_function(Fn* f) {
    return encode_code_address(reinterpret_cast<const void*>(f));
}
template <class Fn>
Fn* decode_function(const CodeAddress& a) {
    return reinterpret_cast<Fn*>(const_cast<void*>(decode_code_address(a)));
}

}  // namespace mproc::detail
