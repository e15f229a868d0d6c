// mproc/serialize.hpp: what mproc sends instead of pickle.
//
// A value is serializable when it is arithmetic or trivially copyable (copied as bytes), a
// std::string, a standard container, pair/tuple/optional/variant or chrono type of serializable
// values, or a type with a cereal-style member `template <class Ar> void serialize(Ar& ar)`
// (call `ar(a, b, c)` in it). Loading needs a default constructor.
//
// mproc::dumps(x) returns bytes that carry a fingerprint of x's type; mproc::loads<T>(bytes)
// checks it, so reading a message as another type throws SerializationError naming both types
// instead of returning garbage. Truncated or malformed bytes throw SerializationError too, and
// no length in the bytes makes the reader allocate more than the message could hold.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <typeinfo>

#include "mproc/detail/archive.hpp"

namespace mproc {

namespace detail {
// 64-bit FNV-1a of a type's mangled name: equal in every process built from the same code.
std::uint64_t type_fingerprint(const std::type_info& t) noexcept;
// The human-readable (demangled) name of a type.
std::string type_name(const std::type_info& t);
std::string demangle(const char* mangled);
// Writes the envelope header for type t; returns nothing, appends to out.
void write_envelope(std::string& out, const std::type_info& t);
// Checks the envelope header against t; returns the offset of the payload.
std::size_t check_envelope(std::string_view bytes, const std::type_info& t);

// Turns a cereal failure (thrown for, say, an invalid variant index) into SerializationError.
[[noreturn]] void rethrow_as_serialization_error(const std::type_info& t);
}  // namespace detail

// True when T can be written by mproc's archives (see above). Containers are checked by cereal
// when instantiated, so a vector of an unserializable type fails to compile there, naming it.
// (cereal declares a serialize() for raw pointers only to fail inside it, so addresses are
// excluded here explicitly.)
template <class T>
concept serializable =
    !detail::holds_address<std::remove_cvref_t<T>>::value &&
    (detail::is_raw_copyable_v<std::remove_cvref_t<T>> || std::is_empty_v<std::remove_cvref_t<T>> ||
     cereal::traits::is_output_serializable<std::remove_cvref_t<T>, detail::OutputArchive>::value);

// Serializes x with its type fingerprint (Python: pickle.dumps).
template <serializable T>
std::string dumps(const T& x) {
    std::string out;
    detail::write_envelope(out, typeid(T));
    detail::OutputArchive ar(out);
    ar(x);
    return out;
}

// Reads bytes written by dumps<T> (Python: pickle.loads). Throws SerializationError when the
// bytes hold another type or are truncated or malformed.
template <serializable T>
T loads(std::string_view bytes) {
    const std::size_t at = detail::check_envelope(bytes, typeid(T));
    T x{};
    try {
        detail::InputArchive ar(bytes.substr(at));
        ar(x);
        if (ar.remaining() != 0)
            throw SerializationError("mproc: " + std::to_string(ar.remaining()) +
                                     " bytes left over after reading " +
                                     detail::type_name(typeid(T)) + ": the message is malformed");
    } catch (const SerializationError&) {
        throw;
    } catch (const cereal::Exception&) {
        detail::rethrow_as_serialization_error(typeid(T));
    }
    return x;
}

}  // namespace mproc
