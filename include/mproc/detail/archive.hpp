// mproc/detail/archive.hpp: the binary archives behind every message (not API).
//
// They are cereal archives, so user types with a cereal-style `serialize(Archive&)` member and
// the std types cereal supports work unchanged. Three things differ from cereal's own
// BinaryArchive, and are why these exist:
//  - they write to and read from memory, not an iostream (no stream overhead per message);
//  - a trivially copyable type that has no serialization function of its own (a plain struct,
//    an enum, std::array<int, N>) is copied as bytes, so users need not write serialize();
//  - reading is bounded: a length that claims more elements than bytes remain is an error
//    before anything is allocated, and reading past the end is an error, never garbage.
#pragma once

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/forward_list.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/errors.hpp"

namespace mproc::detail {

class OutputArchive;
class InputArchive;

template <class T>
struct is_cereal_wrapper : std::false_type {};
template <class T>
struct is_cereal_wrapper<cereal::NameValuePair<T>> : std::true_type {};
template <class T>
struct is_cereal_wrapper<cereal::SizeTag<T>> : std::true_type {};
template <class T>
struct is_cereal_wrapper<cereal::BinaryData<T>> : std::true_type {};
template <class K, class V>
struct is_cereal_wrapper<cereal::MapItem<K, V>> : std::true_type {};

// Types that are trivially copyable but hold addresses, which mean nothing in another process.
template <class T>
struct holds_address : std::bool_constant<std::is_pointer_v<T> || std::is_member_pointer_v<T>> {};
template <class C, class Tr>
struct holds_address<std::basic_string_view<C, Tr>> : std::true_type {};
template <class T, std::size_t N>
struct holds_address<std::span<T, N>> : std::true_type {};

// Copied as bytes: arithmetic types, and trivially copyable types for which cereal knows no
// serialization function (so a user's own serialize() always wins).
template <class T>
inline constexpr bool is_raw_copyable_v =
    std::is_arithmetic_v<T> ||
    (std::is_trivially_copyable_v<T> && !holds_address<T>::value && !is_cereal_wrapper<T>::value &&
     !std::is_empty_v<T> &&
     cereal::traits::detail::count_output_serializers<T, OutputArchive>::value == 0 &&
     cereal::traits::detail::count_input_serializers<T, InputArchive>::value == 0);

// Writes into a growable byte string. Descriptors that must travel with the bytes (handles to
// shared objects) are collected in fds() for the transport to pass along.
class OutputArchive : public cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision> {
    using Base = cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>;

public:
    explicit OutputArchive(std::string& out) : Base(this), out_(out) {}

    void saveBinary(const void* data, std::size_t size) {
        if (size == 0) return;  // an empty container's data() may be null
        out_.append(static_cast<const char*>(data), size);
    }

    template <class... Ts>
    OutputArchive& operator()(Ts&&... xs) {
        (dispatch(std::forward<Ts>(xs)), ...);
        return *this;
    }
    template <class T>
    OutputArchive& operator&(T&& x) {
        dispatch(std::forward<T>(x));
        return *this;
    }
    template <class T>
    OutputArchive& operator<<(T&& x) {
        dispatch(std::forward<T>(x));
        return *this;
    }

    // Adds a descriptor to travel with this message; returns its index for InputArchive::take_fd.
    std::uint32_t add_fd(int fd) {
        fds_.push_back(fd);
        return static_cast<std::uint32_t>(fds_.size() - 1);
    }
    const std::vector<int>& fds() const noexcept { return fds_; }
    // Bytes written so far, and a way back to an earlier size (to replace a value half
    // written when its serialization threw).
    std::size_t size() const noexcept { return out_.size(); }
    void truncate(std::size_t size) { out_.resize(size); }
    // The bytes written so far, to fill in place; valid until the next write.
    char* data() noexcept { return out_.data(); }

private:
    template <class T>
    void dispatch(T&& x) {
        using U = std::remove_cvref_t<T>;
        if constexpr (is_raw_copyable_v<U>)
            saveBinary(std::addressof(x), sizeof(U));
        else
            Base::operator()(std::forward<T>(x));
    }

    std::string& out_;
    std::vector<int> fds_;
};

// Reads from a byte range that must outlive it.
class InputArchive : public cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision> {
    using Base = cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision>;

public:
    // fds: the descriptors that arrived with the message; a value that takes one (take_fd)
    // becomes its owner, and the slot is set to -1. The caller closes what is left.
    explicit InputArchive(std::string_view in, std::span<int> fds = {})
        : Base(this), in_(in), fds_(fds) {}

    void loadBinary(void* data, std::size_t size) {
        if (size > in_.size() - pos_)
            throw SerializationError("mproc: message truncated: " + std::to_string(size) +
                                     " more bytes needed, " + std::to_string(in_.size() - pos_) +
                                     " left");
        if (size == 0) return;  // an empty container's data() may be null
        std::memcpy(data, in_.data() + pos_, size);
        pos_ += size;
    }

    // A container length: each element takes at least one byte on the wire (empty types
    // aside), so a count larger than what is left is malformed; refuse before allocating.
    void loadSize(cereal::size_type& n) {
        loadBinary(&n, sizeof n);
        if (n > remaining() + 4096)
            throw SerializationError("mproc: malformed message: a length of " + std::to_string(n) +
                                     " with " + std::to_string(remaining()) + " bytes left");
    }

    template <class... Ts>
    InputArchive& operator()(Ts&&... xs) {
        (dispatch(std::forward<Ts>(xs)), ...);
        return *this;
    }
    template <class T>
    InputArchive& operator&(T&& x) {
        dispatch(std::forward<T>(x));
        return *this;
    }
    template <class T>
    InputArchive& operator>>(T&& x) {
        dispatch(std::forward<T>(x));
        return *this;
    }

    std::size_t remaining() const noexcept { return in_.size() - pos_; }
    std::size_t position() const noexcept { return pos_; }
    // The bytes not read yet, and the message's descriptors, for reading a part of the
    // message with an archive of its own; skip() then moves past that part.
    std::string_view rest() const noexcept { return in_.substr(pos_); }
    std::span<int> fd_slots() const noexcept { return fds_; }
    void skip(std::size_t n) {
        if (n > remaining()) throw SerializationError("mproc: message truncated");
        pos_ += n;
    }
    // Takes ownership of the descriptor sent at this index.
    int take_fd(std::uint32_t index) {
        if (index >= fds_.size() || fds_[index] < 0)
            throw SerializationError("mproc: message refers to a descriptor that did not arrive");
        return std::exchange(fds_[index], -1);
    }

private:
    template <class T>
    void dispatch(T&& x) {
        using U = std::remove_cvref_t<T>;
        if constexpr (std::is_same_v<U, bool>) {
            unsigned char b = 0;
            loadBinary(&b, 1);
            if (b > 1) throw SerializationError("mproc: malformed message: a bool is not 0 or 1");
            x = b != 0;
        } else if constexpr (is_raw_copyable_v<U>) {
            loadBinary(std::addressof(x), sizeof(U));
        } else {
            Base::operator()(std::forward<T>(x));
        }
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    std::span<int> fds_;
};

}  // namespace mproc::detail

namespace cereal {
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(mproc::detail::OutputArchive& ar,
                                                                     const T& t) {
    ar.saveBinary(std::addressof(t), sizeof(t));
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(mproc::detail::InputArchive& ar,
                                                                     T& t) {
    ar.loadBinary(std::addressof(t), sizeof(t));
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(mproc::detail::OutputArchive& ar, const NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(mproc::detail::InputArchive& ar, NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(mproc::detail::OutputArchive& ar, const SizeTag<T>& t) {
    const size_type n = static_cast<size_type>(t.size);
    ar.saveBinary(&n, sizeof n);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(mproc::detail::InputArchive& ar, SizeTag<T>& t) {
    size_type n = 0;
    ar.loadSize(n);
    t.size = static_cast<std::remove_reference_t<T>>(n);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(mproc::detail::OutputArchive& ar, const BinaryData<T>& bd) {
    ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(mproc::detail::InputArchive& ar, BinaryData<T>& bd) {
    ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}
}  // namespace cereal

CEREAL_REGISTER_ARCHIVE(mproc::detail::OutputArchive)
CEREAL_REGISTER_ARCHIVE(mproc::detail::InputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(mproc::detail::InputArchive, mproc::detail::OutputArchive)
