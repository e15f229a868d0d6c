// src/pool/wire.cpp: the out-of-line parts of the pool's wire protocol (detail/pool_wire.hpp).

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <typeinfo>

#include "mproc/connection.hpp"
#include "mproc/detail/exceptions.hpp"
#include "mproc/detail/pool_wire.hpp"
#include "platform/platform.hpp"
#include "pool/pool_internal.hpp"

namespace mproc::detail::pool {

namespace {
using Clock = std::chrono::steady_clock;

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

void ChunkContext::begin_chunk(std::uint64_t seq, bool timed) noexcept {
    seq_ = seq;
    timed_ = timed;
    begin_item(0);
}

void ChunkContext::begin_item(std::uint32_t index) noexcept {
    auto* s = static_cast<Slot*>(slot_);
    if (timed_) s->started_ns.store(now_ns(), std::memory_order_relaxed);
    s->pos.store(slot_pos(seq_, index), std::memory_order_release);
}

std::exception_ptr result_too_large(std::size_t size, std::size_t cap) {
    return std::make_exception_ptr(ProcessError(
        "mproc: the task's result takes " + std::to_string(size) + " bytes serialized, more than "
        "the pool's max_result_bytes (" + std::to_string(cap) + "); it was not sent"));
}

namespace {
// call_item's check: the arguments took exactly the item's bytes.
struct ItemBounds {
    std::size_t base, offset, size;
};
void check_item_read(const InputArchive& item, const void* state) {
    const auto* b = static_cast<const ItemBounds*>(state);
    if (b->base + item.position() != b->offset + b->size)
        throw SerializationError("mproc: malformed task chunk: an item's size is wrong");
}
}  // namespace

void run_items(InputArchive& in, OutputArchive& out, ChunkContext& ctx, const ChunkSteps& steps,
               const std::exception_ptr& setup_error) {
    std::uint32_t n = 0, fixed = 0;
    in(n, fixed);
    std::vector<std::uint32_t> sizes;
    if (!fixed) {
        sizes.resize(n);
        in.loadBinary(sizes.data(), n * sizeof(std::uint32_t));
    }
    const std::string_view items = in.rest();
    if (steps.call_packed && fixed == steps.packed_args && std::size_t{n} * fixed <= items.size()) {
        const std::size_t rsize = steps.packed_result;
        out(n, kPacked);
        const std::size_t status_at = out.size();
        out.truncate(status_at + n + std::size_t{n} * rsize);
        for (std::uint32_t i = 0; i < n; ++i) {
            ctx.begin_item(i);
            std::uint8_t ok = kItemOk;
            try {
                if (setup_error) std::rethrow_exception(setup_error);
                steps.call_packed(steps.f, items.data() + std::size_t{i} * fixed,
                                  out.data() + status_at + n + std::size_t{i} * rsize);
            } catch (...) {
                ok = kItemFailed;
                save_exception(out, std::current_exception());
            }
            out.data()[status_at + i] = static_cast<char>(ok);
        }
        in.skip(std::size_t{n} * fixed);
        return;
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
            const ItemBounds bounds{base, offset, size};
            steps.call_item(steps.f, *item, out, &check_item_read, &bounds);
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

std::size_t begin_message(std::string& out) {
    out.clear();
    return write_envelope(out, typeid(PoolMessage));
}

std::string_view message_body(const std::string& msg) {
    return std::string_view(msg).substr(check_envelope(msg, typeid(PoolMessage)).payload_offset);
}

void close_unclaimed(std::vector<int>& fds) noexcept {
    for (int fd : fds)
        if (fd >= 0) platform::UniqueFd closer(fd);
    fds.clear();
}

}  // namespace mproc::detail::pool
