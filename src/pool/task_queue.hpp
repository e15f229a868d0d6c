// src/pool/task_queue.hpp: the process pool's waiting chunks, and the batches they travel in
// (private; ProcessCore's, under its mutex).
//
// Chunks travel in batches, one message each way per batch, so that many small chunks do not
// cost a system call each. A batch is sized to about kBatchWork of work (from the times workers
// report), split among the idle workers, and capped by bytes. A worker holds at most two
// batches, so it never waits for the next; a large one (over kBigMessage) goes only to a worker
// holding nothing, which is therefore reading: with results and tasks both in flight and larger
// than the sockets' buffers, each side could otherwise block in send while the other does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/detail/pool_core.hpp"

namespace mproc::detail::pool {

// A chunk sent to a worker, with the sequence number its results will come back under.
class Channel;

struct InFlight {
    Chunk chunk;
    std::uint64_t seq;
};

struct TaskQueue {
    static constexpr double kBatchWork = 200e3;  // ns
    static constexpr std::size_t kMaxBatch = 256, kBatchBytes = 1 << 20;
    static constexpr std::size_t kBigMessage = 64 * 1024;  // larger batches go only to an idle worker

    std::deque<Chunk> queue;  // waiting, in order
    std::uint64_t next_seq = 1;
    double item_ns = 0;  // the time one item takes in a worker, a moving average (0: unknown)

    // How many chunks the next batch may hold, with `usable` workers to share the queue.
    std::size_t batch_limit(std::size_t usable) const;
    // Starts a kTask message in sendbuf: records follow (append_record), then finish_batch.
    void begin_batch();
    // Adds c to the batch being built, as record seq.
    void append_record(const Chunk& c, std::uint64_t seq);
    // Writes the record count and the number of descriptors the batch carries.
    void finish_batch(std::uint32_t records, std::size_t fds);
    // The size of the batch being built.
    std::size_t batch_bytes() const;
    // Sends the batch being built on chan, with fds; throws what the send throws.
    void send_batch(Channel& chan, std::span<const int> fds);
    // A batch of `items` items took `elapsed_ns` in a worker.
    void note_batch_time(std::size_t items, std::int64_t elapsed_ns);

    // Large item buffers of chunks whose results came back, for the next chunks to reuse: a
    // fresh megabyte is a fresh mmap, faulted in page by page and unmapped when freed, which
    // made every other large map half as fast.
    void recycle(std::string&& items);
    // A buffer of `size` bytes; one of recycle()'s when there is one and size is large.
    std::string take_buffer(std::size_t size);
    static constexpr std::size_t kSpareMin = 64 * 1024;

    std::string sendbuf;  // the batch being built

private:
    // Kept: up to 64 MiB, enough for a map's chunks (Python's default chunksize makes four per
    // worker, all queued at once).
    static constexpr std::size_t kSpareBytes = 64 * 1024 * 1024;
    std::vector<std::string> spare_buffers_;
    std::size_t spare_bytes_ = 0;
    // Where in sendbuf each large chunk buffer belongs, for the batch being built: such buffers
    // are not copied in; the send takes them from the chunk, which stays (and keeps its buffer)
    // until its results are back.
    static constexpr std::size_t kSpliceMin = 16 * 1024;
    std::vector<std::pair<std::size_t, std::string_view>> splices_;
    std::size_t envelope_at_ = 0, count_at_ = 0;  // where finish_batch writes
};

}  // namespace mproc::detail::pool
