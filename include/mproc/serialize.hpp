// mproc/serialize.hpp: what mproc sends instead of pickle.
//
// A value is serializable when it is arithmetic or an enum, a plain struct (an aggregate) of
// serializable members, a std::string, a standard container, pair/tuple/optional/variant or
// chrono type of serializable values, or a type with a cereal-style member
// `template <class Ar> void serialize(Ar& ar)` (call `ar(a, b, c)` in it). Loading needs a
// default constructor. Plain structs are copied as bytes, with no serialize() to write.
//
// Addresses never travel: a pointer, reference, string_view or span, at any depth of a struct
// or container, is refused at compile time (it would point at nothing in another process).
// A trivially copyable type whose members mproc cannot see (private members, constructors, a
// base class) is refused too, unless it has serialize() or is declared safe to copy:
//     template <> inline constexpr bool mproc::copy_as_bytes<MyType> = true;
// Wherever a type is sent (a Process or pool argument, a task's result, a Queue's item, a
// Connection's message, a manager's value), a refusal is one mproc static_assert whose
// instantiation names the type sent (T) and the part to blame (Part).
//
// mproc::dumps(x) returns bytes that carry a fingerprint of x's type; mproc::loads<T>(bytes)
// checks it, so reading a message as another type throws SerializationError naming both types
// instead of returning garbage. Truncated or malformed bytes throw SerializationError too, and
// no length in the bytes makes the reader allocate more than the message could hold.
//
// Contracts: nothing here blocks or takes a lock. What a type's own serialize() throws passes
// through (cereal's own errors become SerializationError).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <span>
#include <stdexcept>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "mproc/detail/archive.hpp"

namespace mproc {

namespace detail {
// 64-bit FNV-1a of a type's mangled name: equal in every process built from the same code.
std::uint64_t type_fingerprint(const std::type_info& t) noexcept;
// The human-readable (demangled) name of a type.
std::string type_name(const std::type_info& t);
std::string demangle(const char* mangled);
// The envelope before every typed value: fingerprint (8 bytes), name length (2), the mangled
// name (so a mismatch can name both types), and the count of descriptors that travel with the
// value (2; they go beside the bytes, over a socket or to a child).
// Appends the header for type t; returns the offset of the descriptor count, patched later.
std::size_t write_envelope(std::string& out, const std::type_info& t);
void patch_envelope_fds(std::string& out, std::size_t at, std::size_t count);
struct Envelope {
    std::size_t payload_offset;
    std::size_t fd_count;
};
// Checks the header against t (SerializationError naming both types on a mismatch).
Envelope check_envelope(std::string_view bytes, const std::type_info& t);
// Reads the descriptor count without checking the type.
std::size_t envelope_fd_count(std::string_view bytes);

// Turns a cereal failure (thrown for, say, an invalid variant index) into SerializationError.
[[noreturn]] void rethrow_as_serialization_error(const std::type_info& t);
}  // namespace detail

// True when T can be sent (see above), containers and structs checked to any depth. For
// overloading and `if constexpr`; the entry points themselves take any T and refuse a bad one
// with mproc's message (detail::check_serializable).
template <class T>
concept serializable = detail::verdict<std::remove_cvref_t<T>>::why == detail::Refusal::none;

namespace detail {
// The envelope of a type that carries no descriptors, built once per type.
template <class T>
const std::string& envelope_of() {
    static const std::string header = [] {
        std::string h;
        write_envelope(h, typeid(T));
        return h;
    }();
    return header;
}

// Bytes are copied as they are: no archive needed (bool is left out: it must be checked).
template <class T>
inline constexpr bool fast_path_v = is_raw_copyable_v<T> && !std::is_same_v<T, bool>;

// Appends x, with its envelope, to out; the descriptors it carries are appended to fds.
template <class T>
void encode(std::string& out, const T& x, std::vector<int>& fds) {
    if constexpr (!check_serializable<T>()) {
        // refused at compile time, saying why
    } else if constexpr (fast_path_v<T>) {
        // Measured: a long through dumps+loads took 72 ns with the archive, most of a queue's
        // put+get; as the cached envelope and a memcpy it takes a few.
        out.append(envelope_of<T>());
        out.append(reinterpret_cast<const char*>(std::addressof(x)), sizeof(T));
    } else {
        const std::size_t at = write_envelope(out, typeid(T));
        OutputArchive ar(out);
        ar(x);
        patch_envelope_fds(out, at, ar.fds().size());
        fds.insert(fds.end(), ar.fds().begin(), ar.fds().end());
    }
}

template <class T>
T decode_checked(std::string_view bytes, std::span<int> fds) {
    if constexpr (fast_path_v<T>) {
        const std::string& h = envelope_of<T>();
        if (fds.empty() && bytes.size() == h.size() + sizeof(T) &&
            std::memcmp(bytes.data(), h.data(), h.size()) == 0) {
            T x;
            std::memcpy(static_cast<void*>(std::addressof(x)), bytes.data() + h.size(), sizeof(T));
            return x;
        }
        // Anything else (another type, a wrong size) takes the general path, which says what.
    }
    const Envelope env = check_envelope(bytes, typeid(T));
    if (env.fd_count != fds.size())
        throw SerializationError("mproc: a " + type_name(typeid(T)) + " arrived with " +
                                 std::to_string(fds.size()) + " descriptors, expected " +
                                 std::to_string(env.fd_count));
    T x{};
    try {
        InputArchive ar(bytes.substr(env.payload_offset), fds);
        ar(x);
        if (ar.remaining() != 0)
            throw SerializationError("mproc: " + std::to_string(ar.remaining()) +
                                     " bytes left over after reading " + type_name(typeid(T)) +
                                     ": the message is malformed");
    } catch (const SerializationError&) {
        throw;
    } catch (const cereal::Exception&) {
        rethrow_as_serialization_error(typeid(T));
    }
    return x;
}

// Reads a T written by encode. The descriptors that came with it are in fds; those the value
// takes are set to -1, the caller closes the rest.
template <class T>
T decode(std::string_view bytes, std::span<int> fds) {
    if constexpr (!check_serializable<T>())
        std::abort();  // never compiled into a program: refused at compile time, saying why
    else
        return decode_checked<T>(bytes, fds);
}
}  // namespace detail

// Serializes x with its type fingerprint (Python: pickle.dumps). A value that holds
// descriptors (a Connection, say) cannot be turned into plain bytes: std::logic_error; send it
// over a Connection or give it to a child instead. Never blocks.
template <class T>
std::string dumps(const T& x) {
    std::string out;
    std::vector<int> fds;
    detail::encode(out, x, fds);
    if (!fds.empty())
        throw std::logic_error("mproc: a " + detail::type_name(typeid(T)) +
                               " holds descriptors and cannot become plain bytes; send it over a "
                               "Connection or pass it to a child");
    return out;
}

// Reads bytes written by dumps<T> (Python: pickle.loads). Throws SerializationError when the
// bytes hold another type or are truncated or malformed.
template <class T>
T loads(std::string_view bytes) {
    return detail::decode<T>(bytes, {});
}

}  // namespace mproc
