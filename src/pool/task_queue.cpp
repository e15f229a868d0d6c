// src/pool/task_queue.cpp: which tasks wait, and in what batches they go (ProcessCore).

#include <cstring>

#include "pool/process_core_impl.hpp"
#include "spare_bytes.hpp"

namespace mproc::detail::pool {

std::size_t TaskQueue::batch_limit(std::size_t usable) const {
    std::size_t by_time = 1;
    if (item_ns > 0 && !queue.empty()) {
        const Chunk& c = queue.front();
        const double task_ns = item_ns * static_cast<double>(std::max<std::size_t>(c.count / c.tasks(), 1));
        by_time = static_cast<std::size_t>(std::clamp(kBatchWork / task_ns, 1.0, double(kMaxBatch)));
    }
    // The tasks queued, counted only as far as the share needs: a chunk is at least one.
    usable = std::max<std::size_t>(usable, 1);
    const std::size_t enough = by_time * usable;
    std::size_t queued = queue.size();
    if (queued < enough) {
        queued = 0;
        for (auto c = queue.begin(); c != queue.end() && queued < enough; ++c) queued += c->tasks();
    }
    const std::size_t share = (queued + usable - 1) / usable;
    return std::max<std::size_t>(1, std::min(by_time, share));
}

void TaskQueue::begin_batch() {
    envelope_at_ = begin_message(sendbuf);
    splices_.clear();
    OutputArchive head(sendbuf);
    head(kTask);
    count_at_ = sendbuf.size();
    head(std::uint32_t{0});
}

void TaskQueue::append_record(const Chunk& c, std::uint64_t seq) {
    OutputArchive ar(sendbuf);
    ar(seq, static_cast<bool>(c.timeout));
    ar.saveBinary(c.prefix->data(), c.prefix->size());
    ar(static_cast<std::uint32_t>(c.count), c.fixed);
    ar.saveBinary(c.sizes.data(), c.sizes.size() * sizeof(std::uint32_t));
    if (c.items.size() >= kSpliceMin)
        splices_.emplace_back(sendbuf.size(), std::string_view(c.items));
    else
        ar.saveBinary(c.items.data(), c.items.size());
}

void TaskQueue::finish_batch(std::uint32_t records, std::size_t fds) {
    std::memcpy(sendbuf.data() + count_at_, &records, sizeof records);
    patch_envelope_fds(sendbuf, envelope_at_, fds);
}

std::size_t TaskQueue::batch_bytes() const {
    std::size_t n = sendbuf.size();
    for (auto& sp : splices_) n += sp.second.size();
    return n;
}

void TaskQueue::send_batch(Channel& chan, std::span<const int> fds) {
    if (splices_.empty()) return chan.send(sendbuf, fds);
    std::vector<std::string_view> parts;
    std::size_t from = 0;
    for (auto& [at, items] : splices_) {
        parts.emplace_back(sendbuf.data() + from, at - from);
        parts.push_back(items);
        from = at;
    }
    parts.emplace_back(sendbuf.data() + from, sendbuf.size() - from);
    chan.send(parts, fds);
}

void TaskQueue::note_batch_time(std::size_t items, std::int64_t elapsed_ns) {
    if (items == 0) return;
    const double per = static_cast<double>(elapsed_ns) / static_cast<double>(items);
    item_ns = item_ns > 0 ? 0.7 * item_ns + 0.3 * per : per;
}

void TaskQueue::recycle(std::string&& items) {
    if (items.capacity() >= kSpareFrom) return recycle_bytes(std::move(items));  // the process's one
    if (items.capacity() < kSpareMin || spare_bytes_ + items.capacity() > kSpareBytes) return;
    spare_bytes_ += items.capacity();
    spare_buffers_.push_back(std::move(items));
}

std::string TaskQueue::take_buffer(std::size_t size) {
    std::string b;
    if (size >= kSpareMin && !spare_buffers_.empty()) {
        b = std::move(spare_buffers_.back());
        spare_buffers_.pop_back();
        spare_bytes_ -= b.capacity();
    }
    b.resize(size);
    return b;
}

void ProcessCore::Impl::dispatch() {
    const auto usable = static_cast<std::size_t>(
        std::count_if(workers.begin(), workers.end(), [](auto& w) { return w->usable(); }));
    // Idle workers first; only then a second batch into a busy worker's pipe (which keeps it fed
    // between batches): else a call submitted while one worker runs a long task waits behind it
    // while another worker idles (Python's idle workers take the next task themselves).
    for (const std::size_t most : {std::size_t{1}, std::size_t{2}}) {
        for (auto& wp : workers) {
            Worker& w = *wp;
            while (w.usable() && w.batches_out < most && !w.big_out) {
                while (!tasks.queue.empty() && tasks.queue.front().job->finished()) tasks.queue.pop_front();
                if (tasks.queue.empty()) return;
                if (w.batches_out > 0 && tasks.queue.front().items.size() > TaskQueue::kBigMessage) break;
                std::size_t limit = tasks.batch_limit(usable);
                if (opts.maxtasksperchild) limit = std::min(limit, *opts.maxtasksperchild - w.chunks);
                tasks.begin_batch();
                std::uint32_t records = 0;
                std::size_t sent = 0;  // tasks (limit and maxtasksperchild count tasks)
                std::span<const int> fds;
                while (!tasks.queue.empty() && sent < limit) {
                    Chunk& c = tasks.queue.front();
                    if (c.job->finished()) {
                        tasks.queue.pop_front();
                        continue;
                    }
                    // An executor's future goes alone, and only to an idle worker: once sent it
                    // is running and cannot be cancelled (Python marks running what its call
                    // queue holds, at most max_workers + 1), so it waits here, pending and
                    // cancellable, rather than behind another task in a busy worker's pipe.
                    if (c.job->executor_future() && (records > 0 || w.batches_out > 0)) break;
                    // A chunk whose items carry descriptors travels alone: its archive numbers
                    // them from 0.
                    if (records > 0 && (c.fds || tasks.batch_bytes() + c.items.size() > TaskQueue::kBatchBytes)) break;
                    // A unit chunk gives the batch as many of its tasks as it has room for.
                    Chunk one;
                    if (c.units && c.count > limit - sent) {
                        one = Impl::take_front(c, limit - sent);
                    } else {
                        one = std::move(c);
                        tasks.queue.pop_front();
                    }
                    const std::uint64_t seq = tasks.next_seq++;
                    tasks.append_record(one, seq);
                    one.job->mark_running();
                    if (one.fds) fds = *one.fds;
                    sent += one.tasks();
                    ++records;
                    w.inflight.push_back(InFlight{std::move(one), seq});
                    if (!fds.empty() || w.inflight.back().chunk.job->executor_future()) break;
                }
                if (records == 0) {
                    if (tasks.queue.empty()) return;
                    break;  // the next chunk waits for an idle worker: perhaps another one
                }
                tasks.finish_batch(records, fds.size());
                ++w.batches_out;
                w.big_out = tasks.batch_bytes() > TaskQueue::kBigMessage;
                w.chunks += sent;
                try {
                    tasks.send_batch(w.chan, fds);
                } catch (const std::exception&) {
                    w.dead = true;  // it is gone; its sentinel will say how, and on_death
                    break;          // will run its chunks again
                }
                if (opts.maxtasksperchild && w.chunks >= *opts.maxtasksperchild) stop_worker(w);
            }
        }
    }
}

}  // namespace mproc::detail::pool
