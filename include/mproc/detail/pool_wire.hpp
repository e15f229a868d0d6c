// mproc/detail/pool_wire.hpp: the process pool's wire protocol, both sides of it (not API).
//
// Everything a pool and its worker processes say to each other is written here, top to bottom,
// as CPython's pool is one `(job, i, (ok, value))` tuple defined in one place. Each worker is
// joined to its pool by one duplex Connection; messages wear the typed envelope of PoolMessage
// (so a stray message is a clear error), and start with one byte saying what they are:
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
    std::uint32_t n = 0, fixed = 0;
    in(n, fixed);
    std::vector<std::uint32_t> sizes;
    if (!fixed) {
        sizes.resize(n);
        in.loadBinary(sizes.data(), n * sizeof(std::uint32_t));
    }
    const std::string_view items = in.rest();
    if constexpr (packed_args<Tuple>::value && (std::is_void_v<R> || packable_v<R>)) {
        if (fixed == packed_args<Tuple>::size && std::size_t{n} * fixed <= items.size()) {
            constexpr std::size_t rsize = std::is_void_v<R> ? 0 : sizeof(std::conditional_t<std::is_void_v<R>, char, R>);
            out(n, kPacked);
            const std::size_t status_at = out.size();
            out.truncate(status_at + n + std::size_t{n} * rsize);
            for (std::uint32_t i = 0; i < n; ++i) {
                ctx.begin_item(i);
                std::uint8_t ok = kItemOk;
                try {
                    if (setup_error) std::rethrow_exception(setup_error);
                    Tuple args;
                    unpack_args(items.data() + std::size_t{i} * fixed, args);
                    if constexpr (std::is_void_v<R>) {
                        std::apply(*f, std::move(args));
                    } else {
                        const R r = std::apply(*f, std::move(args));
                        std::memcpy(out.data() + status_at + n + std::size_t{i} * rsize, &r, rsize);
                    }
                } catch (...) {
                    ok = kItemFailed;
                    save_exception(out, std::current_exception());
                }
                out.data()[status_at + i] = static_cast<char>(ok);
            }
            in.skip(std::size_t{n} * fixed);
            return;
        }
    }
    out(n, kPerItem);
    // One archive reads the items in turn (an archive costs more to make than a small item to
    // read); after an item that fails to decode, a new one starts at the next item's offset.
    std::optional<InputArchive> item;
    std::size_t base = 0;  // where in items the archive began
    std::size_t offset = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        ctx.begin_item(i);
        const std::size_t size = fixed ? fixed : sizes[i];
        const std::size_t mark = out.size();
        try {
            if (setup_error) std::rethrow_exception(setup_error);
            if (size > items.size() - offset) throw SerializationError("mproc: malformed task chunk");
            if (!item) {
                item.emplace(items.substr(offset), in.fd_slots());
                base = offset;
            }
            Tuple args;
            (*item)(args);
            if (base + item->position() != offset + size)
                throw SerializationError("mproc: malformed task chunk: an item's size is wrong");
            if constexpr (std::is_void_v<R>) {
                std::apply(*f, std::move(args));
                out(kItemOk);
            } else {
                R r = std::apply(*f, std::move(args));
                out(kItemOk);
                out(r);
            }
        } catch (...) {
            out.truncate(mark);
            out(kItemFailed);
            save_exception(out, std::current_exception());
        }
        if (out.size() - mark > ctx.max_result_bytes()) {
            const std::size_t big = out.size() - mark;
            out.truncate(mark);
            out(kItemFailed);
            save_exception(out, result_too_large(big, ctx.max_result_bytes()));
        }
        offset += size;
        if (item && base + item->position() != offset) item.reset();
    }
    in.skip(std::min(offset, in.remaining()));
}

using ChunkFn = void (*)(InputArchive&, OutputArchive&, ChunkContext&);

}  // namespace mproc::detail::pool
