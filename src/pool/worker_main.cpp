// src/pool/worker_main.cpp: what a pool worker process runs: hello, then batches of chunks in
// and their results out, until told to stop or the pool is gone.

#include <chrono>
#include <cstring>

#include "mproc/connection.hpp"
#include "mproc/detail/pool_wire.hpp"
#include "mproc/detail/shared_region.hpp"
#include "platform/platform.hpp"
#include "pool/channel.hpp"
#include "pool/pool_internal.hpp"
#include "mproc/process.hpp"

namespace mproc::detail::pool {

namespace {
using Clock = std::chrono::steady_clock;

void mark_ready(void* slot) noexcept { static_cast<Slot*>(slot)->ready.store(1, std::memory_order_release); }

void worker_entry(InputArchive& ar) {
    platform::keep_freed_memory();
    Channel chan;
    RegionRef slot;
    std::uint64_t cap = 0;
    bool has_init = false;
    ar(chan, slot, cap, has_init);
    std::string out;
    {
        begin_message(out);
        OutputArchive hello(out);
        try {
            if (has_init) {
                load_function<void(InputArchive&)>(ar)(ar);
            }
            mark_ready(slot.data());
            hello(kHello);
        } catch (...) {
            begin_message(out);
            hello(kInitFailed);
            save_exception(hello, std::current_exception());
            chan.send(out);
            // Wait for the pool to stop us: exiting with tasks unread would make the kernel
            // report a reset on the pool's end before this message.
            try {
                while (chan.wait_worker()) {
                    std::vector<int> fds;
                    const std::string& msg = chan.receive(fds);
                    close_unclaimed(fds);
                    InputArchive in(message_body(msg), fds);
                    std::uint8_t op = 0;
                    in(op);
                    if (op == kStop) return;
                }
            } catch (const std::exception&) {
            }
            return;
        }
        chan.send(out);
    }
    ChunkContext ctx(slot.data(), cap);
    for (;;) {
        std::vector<int> fds;
        const std::string* msg = nullptr;
        try {
            if (!chan.wait_worker()) return;  // the pool is gone
            msg = &chan.receive(fds);
        } catch (const EOFError&) {
            return;  // the pool is gone
        }
        InputArchive in(message_body(*msg), fds);
        std::uint8_t op = 0;
        in(op);
        if (op != kTask) {
            close_unclaimed(fds);
            return;  // kStop
        }
        // A batch of chunks in, one message of results out: the time it took travels back, so
        // that the pool can size the next batch.
        const auto t0 = Clock::now();
        std::uint32_t records = 0;
        in(records);
        const std::size_t at = begin_message(out);
        OutputArchive oa(out);
        oa(kResult, records);
        const std::size_t elapsed_at = out.size();
        oa(std::int64_t{0});
        for (std::uint32_t r = 0; r < records; ++r) {
            std::uint64_t seq = 0;
            bool timed = false;
            in(seq, timed);
            ctx.begin_chunk(seq, timed);
            const ChunkFn run = load_function<void(InputArchive&, OutputArchive&, ChunkContext&)>(in);
            oa(seq, std::uint64_t{0});
            const std::size_t record_at = out.size();
            run(in, oa, ctx);
            const std::uint64_t bytes = out.size() - record_at;
            std::memcpy(out.data() + record_at - sizeof bytes, &bytes, sizeof bytes);
        }
        const std::int64_t elapsed =
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
        std::memcpy(out.data() + elapsed_at, &elapsed, sizeof elapsed);
        close_unclaimed(fds);
        patch_envelope_fds(out, at, oa.fds().size());
        chan.send(out, oa.fds());
    }
}

// What a worker process runs; always sent as a job (a fresh program, or a fork of the pool's
// own fork server), never run in place.
class WorkerTarget final : public Target {
public:
    WorkerTarget(Channel chan, RegionRef slot, std::size_t cap, std::shared_ptr<Target> init)
        : chan_(std::move(chan)), slot_(std::move(slot)), cap_(cap), init_(std::move(init)) {}
    void call() override { throw std::logic_error("mproc: a pool worker runs only as a job"); }
    const char* refusal() const noexcept override { return init_ ? init_->refusal() : nullptr; }
    EntryFn entry() const noexcept override { return &worker_entry; }
    void save(OutputArchive& ar) const override {
        const bool has_init = init_ != nullptr;
        ar(chan_, slot_, static_cast<std::uint64_t>(cap_), has_init);
        if (has_init) {
            save_function(ar, init_->entry());
            init_->save(ar);
        }
    }

private:
    Channel chan_;
    RegionRef slot_;
    std::size_t cap_;
    std::shared_ptr<Target> init_;
};
}  // namespace

std::unique_ptr<Target> make_worker_target(Channel chan, RegionRef slot, std::size_t max_result_bytes,
                                           std::shared_ptr<Target> initializer) {
    return std::make_unique<WorkerTarget>(std::move(chan), std::move(slot), max_result_bytes, std::move(initializer));
}

}  // namespace mproc::detail::pool
