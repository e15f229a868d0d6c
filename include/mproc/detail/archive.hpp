// mproc/detail/archive.hpp: the binary archives behind every message (not API).
//
// They are cereal archives, so user types with a cereal-style `serialize(Archive&)` member and
// the std types cereal supports work unchanged. Three things differ from cereal's own
// BinaryArchive, and are why these exist:
//  - they write to and read from memory, not an iostream (no stream overhead per message);
//  - a plain struct without a serialization function of its own is copied as bytes, so users
//    need not write serialize(); but only after its members, at any depth, are found to hold no
//    address (a pointer copied into another process points at nothing there): see judge();
//  - a type that cannot be sent is refused at compile time with one mproc message, wherever it
//    is sent from (check_serializable), not with cereal's errors from deep inside;
//  - reading is bounded: a length that claims more elements than bytes remain is an error
//    before anything is allocated, and reading past the end is an error, never garbage.
//
// cereal's support for std::unique_ptr and std::shared_ptr (<cereal/types/memory.hpp>) is left
// out: it brings cereal's polymorphic-type registry, whose static objects every translation
// unit compiled, about a second each (issue 18). A program that sends smart pointers includes
// it itself; without it, sending one is refused at compile time saying so.
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
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include <array>
#include <complex>
#include <cstddef>
#include <deque>
#include <forward_list>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/detail/fields.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

class OutputArchive;
class InputArchive;

}  // namespace mproc::detail

namespace mproc {
// Says that T holds no address and may be copied as its bytes, for a trivially copyable type
// whose members mproc cannot see (private members, constructors, a base class, a union):
//     template <> inline constexpr bool mproc::copy_as_bytes<MyType> = true;
// Plain structs need no such line: mproc checks their members itself (see serialize.hpp).
template <class T>
inline constexpr bool copy_as_bytes = false;
}  // namespace mproc

namespace mproc::detail {

// Why a type cannot be sent to another process.
enum class Refusal {
    none,
    address,    // it holds a pointer, reference, string_view or span: meaningless elsewhere
    opaque,     // trivially copyable, but its members cannot be checked for addresses
    no_format,  // mproc knows no way to write it
    smart_pointer,  // a std::unique_ptr or std::shared_ptr without <cereal/types/memory.hpp>
};

template <Refusal Why, class Part>
struct refused {
    static constexpr Refusal why = Why;
    using part = Part;  // the offending type, at whatever depth it was found
};
using accepted = refused<Refusal::none, void>;

template <class T>
inline constexpr bool is_address_v = std::is_pointer_v<T> || std::is_member_pointer_v<T> ||
                                     std::is_reference_v<T>;
template <class C, class Tr>
inline constexpr bool is_address_v<std::basic_string_view<C, Tr>> = true;
template <class T, std::size_t N>
inline constexpr bool is_address_v<std::span<T, N>> = true;
template <class T>
inline constexpr bool is_address_v<std::reference_wrapper<T>> = true;

// The element types of the standard types cereal writes element by element (void: not one).
template <class T>
struct elements {
    using type = void;
};
template <class C, class Tr, class A>
struct elements<std::basic_string<C, Tr, A>> {
    using type = fields::list<>;
};
template <class E, class A>
struct elements<std::vector<E, A>> {
    using type = fields::list<E>;
};
template <class E, class A>
struct elements<std::deque<E, A>> {
    using type = fields::list<E>;
};
template <class E, class A>
struct elements<std::list<E, A>> {
    using type = fields::list<E>;
};
template <class E, class A>
struct elements<std::forward_list<E, A>> {
    using type = fields::list<E>;
};
template <class K, class C, class A>
struct elements<std::set<K, C, A>> {
    using type = fields::list<K>;
};
template <class K, class C, class A>
struct elements<std::multiset<K, C, A>> {
    using type = fields::list<K>;
};
template <class K, class H, class E, class A>
struct elements<std::unordered_set<K, H, E, A>> {
    using type = fields::list<K>;
};
template <class K, class H, class E, class A>
struct elements<std::unordered_multiset<K, H, E, A>> {
    using type = fields::list<K>;
};
template <class K, class V, class C, class A>
struct elements<std::map<K, V, C, A>> {
    using type = fields::list<K, V>;
};
template <class K, class V, class C, class A>
struct elements<std::multimap<K, V, C, A>> {
    using type = fields::list<K, V>;
};
template <class K, class V, class H, class E, class A>
struct elements<std::unordered_map<K, V, H, E, A>> {
    using type = fields::list<K, V>;
};
template <class K, class V, class H, class E, class A>
struct elements<std::unordered_multimap<K, V, H, E, A>> {
    using type = fields::list<K, V>;
};
template <class T, std::size_t N>
struct elements<std::array<T, N>> {
    using type = fields::list<T>;
};
template <class A, class B>
struct elements<std::pair<A, B>> {
    using type = fields::list<A, B>;
};
template <class... Ts>
struct elements<std::tuple<Ts...>> {
    using type = fields::list<Ts...>;
};
template <class... Ts>
struct elements<std::variant<Ts...>> {
    using type = fields::list<Ts...>;
};
template <class T>
struct elements<std::optional<T>> {
    using type = fields::list<T>;
};
template <class T>
struct elements<std::complex<T>> {
    using type = fields::list<T>;
};
template <class T>
struct is_smart_pointer : std::false_type {};
template <class T, class D>
struct is_smart_pointer<std::unique_ptr<T, D>> : std::true_type {};
template <class T>
struct is_smart_pointer<std::shared_ptr<T>> : std::true_type {};
template <class T, class D>
struct elements<std::unique_ptr<T, D>> {
    using type = fields::list<T>;
};
template <class T>
struct elements<std::shared_ptr<T>> {
    using type = fields::list<T>;
};

// cereal's own wrappers, which its archives take apart themselves.
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
template <class T>
struct is_cereal_wrapper<cereal::base_class<T>> : std::true_type {};
template <class T>
struct is_cereal_wrapper<cereal::virtual_base_class<T>> : std::true_type {};

// A serialization function of the type's own (a member serialize(), or cereal's for a std type).
template <class T>
inline constexpr bool has_serializer_v =
    cereal::traits::detail::count_output_serializers<T, OutputArchive>::value != 0 ||
    cereal::traits::detail::count_input_serializers<T, InputArchive>::value != 0;

template <class T>
struct verdict;

template <class... Ts>
struct first_refusal : accepted {};
template <class T, class... Ts>
struct first_refusal<T, Ts...>
    : std::conditional_t<verdict<T>::why != Refusal::none, verdict<T>, first_refusal<Ts...>> {};

template <class... Ts>
constexpr first_refusal<Ts...> judge_all(fields::list<Ts...>) {
    return {};
}

// What the archives make of T (cv-unqualified): accepted, or refused with the part to blame.
// A plain struct is looked into member by member, so an address at any depth is found; a
// type with its own serialize() is trusted to write what it means.
template <class T>
constexpr auto judge() {
    if constexpr (is_address_v<T>)
        return refused<Refusal::address, T>{};
    else if constexpr (::mproc::copy_as_bytes<T> || std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                       std::is_empty_v<T> || is_cereal_wrapper<T>::value)
        return accepted{};
    else if constexpr (std::is_bounded_array_v<T>)
        return judge_all(fields::list<std::remove_extent_t<T>>{});
    // Nested, not joined with &&: naming has_serializer_v<T> compiles cereal's search for T's
    // serialization function, which a type with elements does not need (issue 18).
    else if constexpr (is_smart_pointer<T>::value) {
        if constexpr (has_serializer_v<T>)
            return accepted{};
        else
            return refused<Refusal::smart_pointer, T>{};
    } else if constexpr (!std::is_void_v<typename elements<T>::type>)
        return judge_all(typename elements<T>::type{});
    else if constexpr (has_serializer_v<T>)
        return accepted{};
    else if constexpr (std::is_trivially_copyable_v<T> && fields::listable<T>())
        return judge_all(fields::members_t<T>{});
    else if constexpr (std::is_trivially_copyable_v<T>)
        return refused<Refusal::opaque, T>{};
    else
        return refused<Refusal::no_format, T>{};
}

template <class T>
struct verdict : decltype(judge<std::remove_cv_t<T>>()) {};

// An address anywhere in T's bytes (what shared memory must not hold either).
template <class T>
inline constexpr bool holds_address_v = verdict<T>::why == Refusal::address;

// Copied as bytes: arithmetic types and enums, arrays of them, plain structs whose members hold
// no address (at any depth), and types declared copy_as_bytes. A type's own serialize() wins.
template <class T>
constexpr bool raw_copyable() {
    if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T> || ::mproc::copy_as_bytes<T>)
        return true;
    else if constexpr (std::is_bounded_array_v<T>)
        return raw_copyable<std::remove_all_extents_t<T>>();
    else if constexpr (std::is_class_v<T> && std::is_trivially_copyable_v<T> && !std::is_empty_v<T> &&
                       !is_cereal_wrapper<T>::value && std::is_void_v<typename elements<T>::type>) {
        if constexpr (has_serializer_v<T>)  // nested: see judge()
            return false;
        else
            return verdict<T>::why == Refusal::none;
    } else {
        return false;
    }
}
template <class T>
inline constexpr bool is_raw_copyable_v = raw_copyable<T>();

// std::tuple and std::pair: written element by element, as cereal's tuple and pair functions
// write them (a binary archive gives names no bytes), but without cereal's search for a
// serialization function of the tuple's own. Every pool call sends its arguments as a tuple,
// and that search was most of what a Pool::map of one int compiled for its arguments (issue 18).
template <class T>
inline constexpr bool is_std_tuple_v = false;
template <class... Ts>
inline constexpr bool is_std_tuple_v<std::tuple<Ts...>> = true;
template <class A, class B>
inline constexpr bool is_std_tuple_v<std::pair<A, B>> = true;

// The one compile-time refusal every entry point gives (a Process or pool argument, a result, a
// Queue's item, a Connection's message, a manager's value): the instantiation it names shows
// the type sent (T) and the part to blame (Part). True when T can be sent.
template <class T, class Part = typename verdict<std::remove_cvref_t<T>>::part,
          Refusal Why = verdict<std::remove_cvref_t<T>>::why>
constexpr bool check_serializable() {
    static_assert(Why != Refusal::address,
                  "mproc: this value cannot go to another process: 'Part' (in 'T', the type sent) holds "
                  "an address (a pointer, reference, string_view or span), which means nothing there. "
                  "Send what it points to instead (std::string, std::vector, ...), or give the type "
                  "a serialize(Archive&) member (see mproc/serialize.hpp)");
    static_assert(Why != Refusal::opaque,
                  "mproc: 'Part' (in 'T', the type sent) is trivially copyable, but mproc cannot see "
                  "its members to check that none holds an address (it has private members, "
                  "constructors, a base class, a union, or more than 32 members). Give it a "
                  "serialize(Archive&) member, or declare that its bytes are safe to copy: "
                  "template <> inline constexpr bool mproc::copy_as_bytes<Part> = true;");
    static_assert(Why != Refusal::no_format,
                  "mproc: 'Part' (in 'T', the type sent) cannot be serialized: mproc sends arithmetic "
                  "types, enums, plain structs of them, std::string, standard containers, pair, "
                  "tuple, optional, variant, chrono types, and types with a serialize(Archive&) "
                  "member (see mproc/serialize.hpp)");
    static_assert(Why != Refusal::smart_pointer,
                  "mproc: 'Part' (in 'T', the type sent) is a std::unique_ptr or std::shared_ptr: add "
                  "#include <cereal/types/memory.hpp> to this file to send it (mproc's headers leave it "
                  "out: it costs every translation unit that includes them a second of compile time)");
    return Why == Refusal::none;
}

// Makes s's capacity at least n bytes, keeping its contents. Past a few MiB the new buffer is
// asked for as transparent huge pages before anything touches it: fresh memory faults in 2 MiB
// at a time instead of 4 KiB (on this project's VM a 4 KiB fault costs about 30 us: 6-7 s to
// first touch 1 GiB, against 0.1-3 s in huge pages), and a multi-gigabyte message is written
// into fresh memory at several steps of its way. Grows geometrically, as append would.
void reserve_bytes(std::string& s, std::size_t n);
// s = from, into s's own memory or, when that is too short, into the process's spare or fresh
// huge pages (reserve_bytes). Each byte is written once: resize-then-copy would clear a
// gigabyte first, which costs as much as copying it.
void assign_bytes(std::string& s, std::string_view from);

// A long run of bytes that an archive left where it was (OutputArchive::lend_to): a string's or a
// vector's own buffer, standing at `at` in the archive's output (before the byte there).
struct Lent {
    std::size_t at;
    const char* data;
    std::size_t size;
};
// Runs lent by an archive, and what keeps them where they are until they have been sent.
struct Loan {
    std::vector<Lent> runs;
    std::shared_ptr<void> keep;
};

// Writes into a growable byte string. Descriptors that must travel with the bytes (handles to
// shared objects) are collected in fds() for the transport to pass along.
class OutputArchive : public cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision> {
    using Base = cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>;

public:
    explicit OutputArchive(std::string& out) : Base(this), out_(out) {}
    OutputArchive(const OutputArchive&) = delete;
    OutputArchive& operator=(const OutputArchive&) = delete;
    ~OutputArchive() override;  // out of line, as the base (below)

    void saveBinary(const void* data, std::size_t size) {
        if (size == 0) return;  // an empty container's data() may be null
        if (out_.capacity() - out_.size() < size) reserve_bytes(out_, out_.size() + size);
        out_.append(static_cast<const char*>(data), size);
    }
    // The bytes of a std::string or std::vector, which live in the container's own heap buffer:
    // that buffer stays where it is when the container is moved, so when lending, a long run is
    // not copied but recorded in the loan (lend_to).
    void saveContents(const void* data, std::size_t size) {
        if (!loan_ || size < lend_min_) return saveBinary(data, size);
        loan_->push_back(Lent{out_.size(), static_cast<const char*>(data), size});
        lent_bytes_ += size;
    }
    // From now on, the contents of a string or vector of at least min bytes are recorded in
    // *loan instead of copied: the output is then out() with each run inserted at its `at`.
    // The caller keeps the containers alive and unchanged (moving them is fine) until those
    // bytes have been sent from where they are. A transport that can send from several places
    // at once uses it for very long arguments (mproc::mpi: a 1 GiB argument is not copied on
    // rank 0). Never used with truncate().
    void lend_to(std::vector<Lent>* loan, std::size_t min) noexcept {
        loan_ = loan;
        lend_min_ = min;
    }
    // The bytes written so far, counting those lent.
    std::size_t written() const noexcept { return out_.size() + lent_bytes_; }

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
        if constexpr (!check_serializable<U>()) {
            // refused at compile time, saying why; nothing else is compiled for it
        } else if constexpr (is_raw_copyable_v<U>) {
            saveBinary(std::addressof(x), sizeof(U));
        } else if constexpr (is_std_tuple_v<U>) {
            std::apply([&](const auto&... e) { (dispatch(e), ...); }, x);  // [&]: a tuple<> uses nothing
        } else {
            Base::operator()(std::forward<T>(x));
        }
    }

    std::string& out_;
    std::vector<int> fds_;
    std::vector<Lent>* loan_ = nullptr;
    std::size_t lend_min_ = 0, lent_bytes_ = 0;
};

// Reads from a byte range that must outlive it.
class InputArchive : public cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision> {
    using Base = cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision>;

public:
    // fds: the descriptors that arrived with the message; a value that takes one (take_fd)
    // becomes its owner, and the slot is set to -1. The caller closes what is left.
    explicit InputArchive(std::string_view in, std::span<int> fds = {})
        : Base(this), in_(in), fds_(fds) {}
    InputArchive(const InputArchive&) = delete;
    InputArchive& operator=(const InputArchive&) = delete;
    ~InputArchive() override;  // out of line, as the base (below)

    void loadBinary(void* data, std::size_t size) {
        if (size > in_.size() - pos_) truncated(size, in_.size() - pos_);
        if (size == 0) return;  // an empty container's data() may be null
        std::memcpy(data, in_.data() + pos_, size);
        pos_ += size;
    }

    // A container length: each element takes at least one byte on the wire (empty types
    // aside), so a count larger than what is left is malformed; refuse before allocating.
    void loadSize(cereal::size_type& n) {
        loadBinary(&n, sizeof n);
        if (n > remaining() + 4096) bad_length(n, remaining());
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
        if (n > remaining()) truncated(n, remaining());
        pos_ += n;
    }
    // Takes ownership of the descriptor sent at this index.
    int take_fd(std::uint32_t index) {
        if (index >= fds_.size() || fds_[index] < 0)
            throw SerializationError("mproc: message refers to a descriptor that did not arrive");
        return std::exchange(fds_[index], -1);
    }

private:
    // The errors, out of line (src/serialize.cpp): the message is built only when thrown.
    [[noreturn]] static void truncated(std::size_t needed, std::size_t left);
    [[noreturn]] static void bad_length(std::uint64_t n, std::size_t left);

    template <class T>
    void dispatch(T&& x) {
        using U = std::remove_cvref_t<T>;
        if constexpr (!check_serializable<U>()) {
            // refused at compile time, saying why; nothing else is compiled for it
        } else if constexpr (std::is_same_v<U, bool>) {
            unsigned char b = 0;
            loadBinary(&b, 1);
            if (b > 1) throw SerializationError("mproc: malformed message: a bool is not 0 or 1");
            x = b != 0;
        } else if constexpr (is_raw_copyable_v<U>) {
            loadBinary(std::addressof(x), sizeof(U));
        } else if constexpr (is_std_tuple_v<U>) {
            std::apply([&](auto&... e) { (dispatch(e), ...); }, x);  // [&]: a tuple<> uses nothing
        } else {
            Base::operator()(std::forward<T>(x));
        }
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    std::span<int> fds_;
};

}  // namespace mproc::detail

// The archives' cereal bases are compiled once, in the library (src/serialize.cpp), not in
// every translation unit that sends something.
extern template class cereal::OutputArchive<mproc::detail::OutputArchive, cereal::AllowEmptyClassElision>;
extern template class cereal::InputArchive<mproc::detail::InputArchive, cereal::AllowEmptyClassElision>;

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
// cereal's own, but for the contents, which a lending archive may leave where they are.
inline void CEREAL_SAVE_FUNCTION_NAME(mproc::detail::OutputArchive& ar, const std::string& str) {
    ar(make_size_tag(static_cast<size_type>(str.size())));
    ar.saveContents(str.data(), str.size());
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>> CEREAL_SAVE_FUNCTION_NAME(
    mproc::detail::OutputArchive& ar, const std::vector<T>& v) {
    ar(make_size_tag(static_cast<size_type>(v.size())));
    ar.saveContents(v.data(), v.size() * sizeof(T));
}
// cereal's own, but for the buffer: a long string is decoded into fresh memory asked for as
// huge pages, or the spare (assign_bytes).
inline void CEREAL_LOAD_FUNCTION_NAME(mproc::detail::InputArchive& ar, std::string& str) {
    size_type n = 0;
    ar(make_size_tag(n));
    const std::string_view bytes = ar.rest().substr(0, static_cast<std::size_t>(n));
    ar.skip(static_cast<std::size_t>(n));  // SerializationError when the message holds fewer
    mproc::detail::assign_bytes(str, bytes);
}
}  // namespace cereal

CEREAL_REGISTER_ARCHIVE(mproc::detail::OutputArchive)
CEREAL_REGISTER_ARCHIVE(mproc::detail::InputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(mproc::detail::InputArchive, mproc::detail::OutputArchive)
