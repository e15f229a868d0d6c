// mproc/sharedctypes.hpp: typed values and arrays in shared memory (Python: multiprocessing's
// Value, Array, RawValue, RawArray, from multiprocessing.sharedctypes).
//
//   mproc::Value<double> v(10.0);          // Value('d', 10)
//   mproc::Array<int> a(4);                // Array('i', 4), zeroed
//   mproc::Array<int> b{1, 2, 3, 4};
//
// T is any trivially copyable type. The memory is an anonymous memfd: a child inherits it
// (fork) or receives it (spawn, forkserver, or sent over a Connection), and the kernel frees it
// when the last process lets go, so it cannot leak. Copies of a handle refer to the same memory.
//
// Value and Array are synchronized, as Python's: value(), set_value(), get() and set() each take
// the object's recursive lock (get_lock(), an RLock, robust to a dead holder); for several
// operations as one, hold the lock: `std::lock_guard g(v.get_lock()); v.set_value(v.value() + 1);`.
// get_obj() gives the raw memory, with no locking. RawValue and RawArray have no lock (Python's
// lock=False).
//
// A lock of the caller's (Python: Value(typecode, v, lock=lk)) guards the object instead, and
// may guard several: `mproc::Lock lk; mproc::Value a(0, lk), b(0, lk);` (a Value<int, Lock>).
// The lock type L is any process lock with lock()/unlock() that can travel: mproc::RLock (the
// default), mproc::Lock, a Semaphore, a manager's LockProxy. get_lock() returns that lock; a
// child given the object gets the lock with it.
//
// Contracts: the synchronized accessors block only on their lock (a futex for mproc's locks, a
// round trip to the manager for a LockProxy), so with a non-recursive L the caller must not
// hold get_lock() across them (it would wait for itself, as in Python); nothing else blocks.
// An index out of range is std::out_of_range, checked before the lock is taken. A moved-from
// object is std::logic_error (RawArray's unchecked operator[] aside); creating one makes a
// memfd: std::system_error when the system refuses.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "mproc/detail/archive.hpp"
#include "mproc/synchronize.hpp"

namespace mproc {

namespace detail {
// Layout of a synchronized object's region: its lock in the first 64 bytes, the data after.
constexpr std::size_t kDataOffset = 64;

template <class T>
T* data_at(const RegionRef& r, std::size_t offset) {
    if (!r) throw std::logic_error("mproc: use of a moved-from shared object");
    return std::launder(reinterpret_cast<T*>(static_cast<char*>(r.data()) + offset));
}

// An array's element count from a message, checked against the region it arrived with.
inline std::size_t load_count(InputArchive& ar, std::size_t bytes_available, std::size_t element_size) {
    std::uint64_t n = 0;
    ar(n);
    if (n > bytes_available / (element_size ? element_size : 1)) throw SerializationError("mproc: malformed shared array");
    return static_cast<std::size_t>(n);
}

// Python accepts any lock with acquire() and release(); here lock() and unlock(), and the lock
// must reach the processes the object goes to.
template <class L>
concept shareable_lock = std::copy_constructible<L> && std::default_initializable<L> && requires(L& l) {
    l.lock();
    l.unlock();
};

// A synchronized object's region and lock. The RLock made for it lives in the region's first
// kDataOffset bytes (one mapping for both); a lock the caller gives is an object of its own,
// which travels beside the region.
template <class L>
class Guarded {
protected:
    static constexpr bool kLockInRegion = std::is_same_v<L, RLock>;

    explicit Guarded(std::size_t data_bytes)
        : at_(RegionRef::create(kDataOffset + data_bytes)), lock_(made_lock()), own_(kLockInRegion) {}
    Guarded(std::size_t data_bytes, L lock)
        : at_(RegionRef::create(kDataOffset + data_bytes)), lock_(std::move(lock)), own_(false) {
        if constexpr (std::is_base_of_v<LockHandle, L>)
            if (lock_.core().region().is_private())
                throw std::invalid_argument(
                    "mproc: a mproc::threading lock cannot guard shared memory that other processes use; "
                    "use mproc::Lock or mproc::RLock");
    }

    void save(OutputArchive& ar) const {
        at_.save(ar);
        ar(own_);
        if (!own_) ar(lock_);
    }
    // data_bytes: the least the data needs, checked against the region received.
    void load(InputArchive& ar, std::size_t data_bytes, const char* what) {
        at_.load(ar);
        if (at_.size() < kDataOffset + data_bytes) throw SerializationError(std::string("mproc: malformed ") + what);
        ar(own_);
        if (own_ && !kLockInRegion) throw SerializationError(std::string("mproc: malformed ") + what);
        if (own_)
            lock_ = made_lock();
        else
            ar(lock_);
    }

    RegionRef at_;
    mutable L lock_;
    bool own_;  // lock_ lives in at_'s region

private:
    L made_lock() const {
        if constexpr (kLockInRegion)
            return RLock(RegionRef{at_.region, at_.offset});
        else
            return L{};
    }
};

inline void check_index(std::size_t i, std::size_t n) {
    if (i >= n)
        throw std::out_of_range("mproc: index " + std::to_string(i) + " out of range for an array of " +
                                std::to_string(n));
}
}  // namespace detail

template <class T>
class RawValue {
    static_assert(std::is_trivially_copyable_v<T>, "mproc::RawValue<T> needs a trivially copyable T");
    static_assert(!detail::holds_address_v<T>, "mproc::RawValue<T>: T holds an address (a pointer, reference, string_view or span, at some depth), which means nothing in the other processes that map this memory");

public:
    explicit RawValue(const T& initial = T{}) : at_(detail::RegionRef::create(sizeof(T))) {
        std::memcpy(static_cast<void*>(&value()), &initial, sizeof(T));
    }
    T& value() const { return *detail::data_at<T>(at_, 0); }
    void set_value(const T& v) const { value() = v; }

    void save(detail::OutputArchive& ar) const { at_.save(ar); }
    void load(detail::InputArchive& ar) {
        at_.load(ar);
        if (at_.size() < sizeof(T)) throw SerializationError("mproc: malformed RawValue");
    }

private:
    detail::RegionRef at_;
};

template <class T>
class RawArray {
    static_assert(std::is_trivially_copyable_v<T>, "mproc::RawArray<T> needs a trivially copyable T");
    static_assert(!detail::holds_address_v<T>, "mproc::RawArray<T>: T holds an address (a pointer, reference, string_view or span, at some depth), which means nothing in the other processes that map this memory");

public:
    explicit RawArray(std::size_t n = 0) : at_(detail::RegionRef::create(n * sizeof(T))), n_(n) {}
    RawArray(std::initializer_list<T> init) : RawArray(init.size()) { std::copy(init.begin(), init.end(), begin()); }
    explicit RawArray(const std::vector<T>& init) : RawArray(init.size()) { std::copy(init.begin(), init.end(), begin()); }

    std::size_t size() const noexcept { return n_; }
    // Unchecked, as std::vector's; at() checks (std::out_of_range).
    T& operator[](std::size_t i) const noexcept { return data()[i]; }
    T& at(std::size_t i) const {
        detail::check_index(i, n_);
        return data()[i];
    }
    T* data() const { return detail::data_at<T>(at_, 0); }
    T* begin() const { return data(); }
    T* end() const { return data() + n_; }
    std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

    void save(detail::OutputArchive& ar) const {
        at_.save(ar);
        ar(static_cast<std::uint64_t>(n_));
    }
    void load(detail::InputArchive& ar) {
        at_.load(ar);
        n_ = detail::load_count(ar, at_.size(), sizeof(T));
    }

private:
    detail::RegionRef at_;
    std::size_t n_ = 0;
};

template <class T, detail::shareable_lock L = RLock>
class Value : private detail::Guarded<L> {
    static_assert(std::is_trivially_copyable_v<T>, "mproc::Value<T> needs a trivially copyable T");
    static_assert(!detail::holds_address_v<T>, "mproc::Value<T>: T holds an address (a pointer, reference, string_view or span, at some depth), which means nothing in the other processes that map this memory");
    using Base = detail::Guarded<L>;

public:
    // Guarded by an RLock of its own (for another L, a new L).
    explicit Value(const T& initial = T{}) : Base(sizeof(T)) { init(initial); }
    // Guarded by `lock`, which other objects may share (Python: lock=lk). A mproc::threading
    // lock: std::invalid_argument (it cannot reach another process).
    Value(const T& initial, L lock) : Base(sizeof(T), std::move(lock)) { init(initial); }
    // Each takes the lock (what the lock throws passes through).
    T value() const {
        std::lock_guard g(this->lock_);
        return get_obj();
    }
    void set_value(const T& v) const {
        std::lock_guard g(this->lock_);
        get_obj() = v;
    }
    // The lock that guards this value: its own, or the one given (the same lock).
    L& get_lock() const noexcept { return this->lock_; }
    // The value itself, with no lock taken.
    T& get_obj() const { return *detail::data_at<T>(this->at_, detail::kDataOffset); }

    void save(detail::OutputArchive& ar) const { Base::save(ar); }
    void load(detail::InputArchive& ar) { Base::load(ar, sizeof(T), "Value"); }

private:
    void init(const T& initial) { std::memcpy(static_cast<void*>(&get_obj()), &initial, sizeof(T)); }
};

template <class T, detail::shareable_lock L = RLock>
class Array : private detail::Guarded<L> {
    static_assert(std::is_trivially_copyable_v<T>, "mproc::Array<T> needs a trivially copyable T");
    static_assert(!detail::holds_address_v<T>, "mproc::Array<T>: T holds an address (a pointer, reference, string_view or span, at some depth), which means nothing in the other processes that map this memory");
    using Base = detail::Guarded<L>;

public:
    explicit Array(std::size_t n = 0) : Base(n * sizeof(T)), n_(n) {}
    Array(std::initializer_list<T> init) : Array(init.size()) { std::copy(init.begin(), init.end(), raw()); }
    explicit Array(const std::vector<T>& init) : Array(init.size()) { std::copy(init.begin(), init.end(), raw()); }
    // Guarded by `lock`, which other objects may share (Python: lock=lk); as Value's.
    Array(std::size_t n, L lock) : Base(n * sizeof(T), std::move(lock)), n_(n) {}
    Array(const std::vector<T>& init, L lock) : Array(init.size(), std::move(lock)) {
        std::copy(init.begin(), init.end(), raw());
    }

    std::size_t size() const noexcept { return n_; }
    // Each takes the lock; an index out of range is std::out_of_range.
    T get(std::size_t i) const {
        detail::check_index(i, n_);
        std::lock_guard g(this->lock_);
        return raw()[i];
    }
    void set(std::size_t i, const T& v) const {
        detail::check_index(i, n_);
        std::lock_guard g(this->lock_);
        raw()[i] = v;
    }
    // Python's arr[:]: a copy of every element, taken under the lock.
    std::vector<T> to_vector() const {
        std::lock_guard g(this->lock_);
        return std::vector<T>(raw(), raw() + n_);
    }
    // The lock that guards this array: its own, or the one given (the same lock).
    L& get_lock() const noexcept { return this->lock_; }
    // The elements themselves, with no lock taken.
    std::span<T> get_obj() const { return std::span<T>(raw(), n_); }

    void save(detail::OutputArchive& ar) const {
        Base::save(ar);
        ar(static_cast<std::uint64_t>(n_));
    }
    void load(detail::InputArchive& ar) {
        Base::load(ar, 0, "Array");
        n_ = detail::load_count(ar, this->at_.size() - detail::kDataOffset, sizeof(T));
    }

private:
    T* raw() const { return detail::data_at<T>(this->at_, detail::kDataOffset); }
    std::size_t n_ = 0;
};

}  // namespace mproc
