// mproc/detail/pool_wire.hpp: the process pool's wire protocol, both sides of it (not API).
//
// Everything a pool and its worker processes say to each other is written here, top to bottom,
// as CPython's pool is one `(job, i, (ok, value))` tuple defined in one place. Each worker is
// joined to its pool by a channel (src/pool/channel.hpp): two rings in shared memory, one each
// way, with a duplex Connection beside them for large messages and descriptors. Messages wear
// the typed envelope of PoolMessage (so a stray message is a clear error), and start with one
// byte saying what they are:
//
//   pool -> worker   kTask  u32 records, then per record (one chunk of one call):
//                           u64 seq, bool timed, prefix, chunk
//                      prefix: the chunk function's CodeAddress (run_chunk<F, Tuple, R>), then
//                              the callable (save_callable); made once per call (prepare)
//                      chunk:  u32 n, u32 fixed (every item's size, or 0: sizes follow),
//                              [u32 size] * n when not fixed, then the items
//                    kStop  finish what was sent, then exit
//   worker -> pool   kHello       the initializer ran (or there was none)
//                    kInitFailed  exception: the initializer threw
//                    kResult      u32 records, i64 elapsed ns (the batch's time in the worker,
//                                 which sizes the next batch), then per record:
//                                 u64 seq, u64 bytes (of what follows: the record's results),
//                                 u32 n, u8 layout, results (see kPerItem, kPacked)
//
// A record says its length, so that a result that does not decode spoils only its own chunk,
// and so that a relay (an MPI worker rank, src/mpi/) can pass a record on without its types.
//
// Records come back in the order they were sent. Beside the connection, each worker has a Slot
// of shared memory saying which item of which chunk it runs and since when: the pool reads it
// to enforce deadlines, and after a death to tell the item that killed the worker from those
// that finished or never started.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/archive.hpp"
#include "mproc/detail/exceptions.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail::pool {

// ---- messages
constexpr std::uint8_t kTask = 'T', kStop = 'S', kHello = 'H', kInitFailed = 'I', kResult = 'R';

// Pool messages wear the typed envelope of this tag type: it is what tells a Connection how many
// descriptors travel with a message, and it makes a stray message a clear error.
struct PoolMessage {};
// Starts a message in out (cleared); returns where the descriptor count goes
// (patch_envelope_fds). src/pool/wire.cpp.
std::size_t begin_message(std::string& out);
// The message's payload, after its envelope; SerializationError when it is not a pool message.
std::string_view message_body(const std::string& msg);

// ---- the shared slot

// One per worker position, in a shared region; written only by the worker.
struct alignas(64) Slot {
    std::atomic<std::uint64_t> pos;         // slot_pos(): which item of which chunk runs
    std::atomic<std::int64_t> started_ns;   // when that item began, steady clock (timed chunks)
    // Set once the initializer has run. kHello says so too, but a worker that dies with a task
    // unread makes the kernel report a reset on the pool's end before the messages it sent:
    // the slot survives that.
    std::atomic<std::uint32_t> ready;
};
static_assert(sizeof(Slot) == 64);

// (chunk seq mod 2^32) << 32 | item index.
inline std::uint64_t slot_pos(std::uint64_t seq, std::uint32_t item) noexcept {
    return ((seq & 0xffffffffu) << 32) | item;
}
inline std::uint32_t slot_seq(std::uint64_t pos) noexcept { return static_cast<std::uint32_t>(pos >> 32); }
inline std::uint32_t slot_item(std::uint64_t pos) noexcept { return static_cast<std::uint32_t>(pos & 0xffffffffu); }

// ---- chunks and results

// What a worker process knows of the item it is running; the dispatcher reads it (through
// shared memory) to enforce deadlines, and to tell, when a worker dies, which item killed it.
class ChunkContext {
public:
    ChunkContext(void* slot, std::size_t max_result_bytes) : slot_(slot), max_result_bytes_(max_result_bytes) {}
    // timed: the chunk has a deadline, so each item's start time is written too.
    void begin_chunk(std::uint64_t seq, bool timed) noexcept;
    void begin_item(std::uint32_t index) noexcept;
    std::size_t max_result_bytes() const noexcept { return max_result_bytes_; }

private:
    void* slot_;
    std::size_t max_result_bytes_;
    std::uint64_t seq_ = 0;
    bool timed_ = false;
};

// The error a result too large to send turns into.
std::exception_ptr result_too_large(std::size_t size, std::size_t cap);

// Arguments and results of plain types (arithmetic, trivially copyable) travel packed, as bytes
// side by side, without an archive per item: on the hot path of a map of small tasks that is
// most of the cost.
template <class T>
inline constexpr bool packable_v = is_raw_copyable_v<T> && !std::is_same_v<T, bool>;
template <class Tuple>
struct packed_args : std::false_type {};
template <class... A>
struct packed_args<std::tuple<A...>> : std::bool_constant<(sizeof...(A) > 0) && (packable_v<A> && ...)> {
    static constexpr std::size_t size = (std::size_t{0} + ... + sizeof(A));
};
template <class Tuple>
void pack_args(char* dst, const Tuple& t) {
    std::apply([&](const auto&... a) {
        std::size_t off = 0;
        ((std::memcpy(dst + off, &a, sizeof a), off += sizeof a), ...);
    }, t);
}
template <class Tuple>
void unpack_args(const char* src, Tuple& t) {
    std::apply([&](auto&... a) {
        std::size_t off = 0;
        ((std::memcpy(&a, src + off, sizeof a), off += sizeof a), ...);
    }, t);
}
// Results, after u32 n: a layout byte, then
//   kPerItem  per item: kItemOk and the value, or kItemFailed and the exception;
//   kPacked   (a result type packed as bytes) n status bytes (kItemOk / kItemFailed), n values
//             (those of failed items left zero), then the exceptions of the failed, in order.
constexpr std::uint8_t kPerItem = 0, kPacked = 1;
constexpr std::uint8_t kItemFailed = 0, kItemOk = 1;

// What run_chunk does that depends on the task's types, for the loop that does the rest
// (run_items, src/pool/wire.cpp): compiled once, not per task type in every TU that makes a
// pool call.
struct ChunkSteps {
    const void* f = nullptr;  // the callable
    // Packed arguments (0: they are not): args points at one item's, the result (when packed)
    // is written at result. Null when the result is not packed.
    std::size_t packed_args = 0;
    std::size_t packed_result = 0;
    void (*call_packed)(const void* f, const char* args, char* result) = nullptr;
    // Per item: the arguments from item (checked(item) says whether the item was read whole,
    // else it throws), the call, kItemOk and the result to out.
    void (*call_item)(const void* f, InputArchive& item, OutputArchive& out, void (*checked)(const InputArchive&, const void*),
                      const void* check_state) = nullptr;
};
// Runs the chunk's items with steps, as run_chunk says; setup_error (loading the callable
// failed) is every item's error.
void run_items(InputArchive& in, OutputArchive& out, ChunkContext& ctx, const ChunkSteps& steps,
               const std::exception_ptr& setup_error);

// A chunk on the wire, after its prefix (the chunk function's address, then the callable):
//   u32 n, u32 fixed size (0: sizes follow), [u32 size] * n, the items.
// Each item is read with an archive of its own, so one malformed item cannot spoil the next.
// Runs in a worker; writes u32 n, then the results in one of the layouts above.
template <class F, class Tuple, class R>
void run_chunk(InputArchive& in, OutputArchive& out, ChunkContext& ctx) {
    std::optional<F> f;
    std::exception_ptr setup_error;
    try {
        f.emplace(load_callable<F>(in));
    } catch (...) {
        setup_error = std::current_exception();
    }
    ChunkSteps steps;
    steps.f = f ? &*f : nullptr;
    if constexpr (packed_args<Tuple>::value && (std::is_void_v<R> || packable_v<R>)) {
        steps.packed_args = packed_args<Tuple>::size;
        if constexpr (!std::is_void_v<R>) steps.packed_result = sizeof(R);
        steps.call_packed = [](const void* fn, const char* src, char* result) {
            Tuple args;
            unpack_args(src, args);
            if constexpr (std::is_void_v<R>) {
                std::apply(*static_cast<const F*>(fn), std::move(args));
            } else {
                const R r = std::apply(*static_cast<const F*>(fn), std::move(args));
                std::memcpy(result, &r, sizeof(R));
            }
        };
    }
    steps.call_item = [](const void* fn, InputArchive& item, OutputArchive& o,
                         void (*checked)(const InputArchive&, const void*), const void* state) {
        Tuple args;
        item(args);
        checked(item, state);
        if constexpr (std::is_void_v<R>) {
            std::apply(*static_cast<const F*>(fn), std::move(args));
            o(kItemOk);
        } else {
            R r = std::apply(*static_cast<const F*>(fn), std::move(args));
            o(kItemOk);
            o(r);
        }
    };
    run_items(in, out, ctx, steps, setup_error);
}

using ChunkFn = void (*)(InputArchive&, OutputArchive&, ChunkContext&);

}  // namespace mproc::detail::pool
