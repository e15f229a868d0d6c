// Named shared memory and its tracker.
#include "mproc/shared_memory.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <system_error>

#include "mproc/context.hpp"
#include "mproc/detail/introspect.hpp"
#include "launch.hpp"
#include "persistent_fds.hpp"
#include "platform/fd.hpp"
#include "platform/io.hpp"
#include "platform/memory.hpp"
#include "platform/net.hpp"
#include "platform/process.hpp"
#include "platform/signal.hpp"
#include "platform/system.hpp"
#include "shm_tracker.hpp"

namespace mproc {
namespace detail {

// The tracker (one per tree of processes that creates named segments; Python's
// resource_tracker). Every process of the tree holds the client end of a SOCK_SEQPACKET
// socketpair: inherited by fork children, passed to spawn and forkserver children with their
// job. Messages are single records: 'R' + name (a segment to remove when the tree is gone),
// 'U' + name (unlinked by its owner: forget it). When every holder has closed the client end
// (the tree is gone, even by kill -9) the tracker reads end of file, takes an exclusive flock
// on each remaining segment (every open handle anywhere holds a shared one, so this waits until
// nobody uses it), removes it, and exits. It has no lifeline and ignores SIGINT and SIGTERM: it
// must outlive the tree it cleans up after.
namespace {
struct TrackerClient {
    std::mutex mu;
    int fd = -1;  // the client end; -1 until started here or received
    pid_t pid = -1;
};
TrackerClient& tracker() {
    static TrackerClient* t = new TrackerClient;  // never destroyed: children and exit use it
    return *t;
}

// Python's resource_tracker._IGNORED_SIGNALS.
constexpr int kIgnoredSignals[] = {platform::kSigInt, platform::kSigTerm};

// Under t.mu: starts a tracker for this tree, with this process as its client. The signals it
// ignores are blocked in it from its first instruction until it ignores them (Python blocks
// them across the tracker's start, in ensure_running): a Ctrl-C to the process group in its
// first moments is dropped, not fatal.
void start_tracker(TrackerClient& t) {
    auto [mine, theirs] = platform::socket_pair(platform::SocketKind::Packets);
    if (initialized()) {
        t.pid = spawn_self("tracker", theirs.get(), kIgnoredSignals);
    } else {
        // Without mproc::init the program cannot re-run itself: fork, and serve at once.
        flush_std_streams();
        t.pid = platform::fork_process(kIgnoredSignals);
        if (t.pid == 0) {
            mine.reset();
            tracker_main(theirs.release());
        }
    }
    t.fd = mine.release();
}

void send_to_tracker(char op, const std::string& name) {
    TrackerClient& t = tracker();
    std::lock_guard lk(t.mu);
    if (t.fd < 0) {
        if (op == 'U') return;
        start_tracker(t);
    }
    const std::string message = std::string(1, op) + name;
    const std::string_view piece(message);
    for (int attempt = 0;; ++attempt) {
        try {
            platform::send_record(t.fd, std::span<const std::string_view>(&piece, 1));
            return;
        } catch (const std::system_error&) {
            // The tracker is gone (killed from outside). A name to forget it took with it; a
            // new segment gets a new tracker (Python's ensure_running: the dead one reaped, a
            // warning, another started), so what is made from now on is still removed. Those
            // the dead one held are not: hence the warning.
            if (op == 'U' || attempt > 0) return;
            platform::UniqueFd closer(std::exchange(t.fd, -1));
            if (t.pid > 0) platform::reap(t.pid);  // its end is closed: it has exited
            std::fprintf(stderr,
                         "mproc: resource_tracker: process died unexpectedly, relaunching.  Some resources "
                         "might leak.\n");
            start_tracker(t);
        }
    }
}
}  // namespace

int tracker_fd() noexcept {
    std::lock_guard lk(tracker().mu);
    return tracker().fd;
}

namespace {
const bool g_tracker_kept = (keep_fd_source(&tracker_fd), true);
}  // namespace

void adopt_tracker(int fd) noexcept {
    TrackerClient& t = tracker();
    std::lock_guard lk(t.mu);
    if (t.fd >= 0) platform::UniqueFd closer(t.fd);
    t.fd = fd;
    t.pid = -1;  // not our child
}

pid_t tracker_pid() noexcept {
    std::lock_guard lk(tracker().mu);
    return tracker().pid;
}

void tracker_main(int fd) noexcept {
    platform::ignore_signals(kIgnoredSignals);  // blocked until now: see start_tracker
    std::set<std::string> names;
    char buf[512];
    for (;;) {
        std::size_t n = 0;
        try {
            n = platform::read_some(fd, buf, sizeof buf);  // one record (the socket keeps them whole)
        } catch (const std::system_error&) {
            break;  // cannot read on: as if every holder were gone
        }
        if (n == 0) break;  // every holder is gone
        const std::string name(buf + 1, n - 1);
        if (buf[0] == 'R') names.insert(name);
        if (buf[0] == 'U') names.erase(name);
    }
    for (const auto& name : names) {
        try {
            platform::UniqueFd f = platform::shm_attach(name);
            platform::lock_file_exclusive(f.get());  // waits for every handle to close
            platform::shm_remove(name);
        } catch (const std::exception&) {
            // Already removed by someone else: nothing left to do.
        }
    }
    platform::exit_now(0);
}

}  // namespace detail

namespace shared_memory {

namespace {
std::string random_name() {
    unsigned char r[8];
    platform::random_bytes(r, sizeof r);
    char hex[17];
    for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", r[i]);
    // Python's names start "psm_". MPROC_SHM_NAME_PREFIX replaces the prefix (the environment
    // reaches spawned children too): the test suite gives each test process its own, so that
    // tests running side by side can tell their segments apart in /dev/shm.
    const char* prefix = std::getenv("MPROC_SHM_NAME_PREFIX");
    return std::string(prefix && *prefix ? prefix : "mproc_psm_") + hex;
}

std::string path_of(const std::string& name) { return name.empty() || name[0] != '/' ? "/" + name : name; }
}  // namespace

SharedMemory::SharedMemory(SharedMemoryOptions o) {
    // A name is a C string to the OS: one with a NUL in it would be cut short there and name
    // another segment (Python: ValueError: embedded null character).
    if (o.name && o.name->find('\0') != std::string::npos)
        throw std::invalid_argument("mproc: a shared memory name cannot hold a NUL character");
    platform::UniqueFd fd;
    if (o.create) {
        if (o.size == 0) throw std::invalid_argument("mproc: 'size' must be a positive number different from zero");
        for (;;) {
            const std::string name = o.name ? *o.name : random_name();
            try {
                fd = platform::shm_create(path_of(name), o.size);
                name_ = name;
                break;
            } catch (const std::system_error& e) {
                if (o.name || e.code().value() != EEXIST) throw;  // a random name collided: draw again
            }
        }
        size_ = o.size;
        if (o.track) detail::send_to_tracker('R', path_of(name_));
    } else {
        if (!o.name) throw std::invalid_argument("mproc: 'name' can only be empty if create is true");
        fd = platform::shm_attach(path_of(*o.name));
        name_ = *o.name;
        size_ = platform::file_size(fd.get());
    }
    if (!name_.empty() && name_[0] == '/') name_.erase(0, 1);
    platform::lock_file_shared(fd.get());
    data_ = platform::map_shared(fd.get(), size_);
    fd_ = fd.release();
}

SharedMemory::SharedMemory(SharedMemory&& o) noexcept
    : name_(std::move(o.name_)), fd_(std::exchange(o.fd_, -1)), data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& o) noexcept {
    if (this != &o) {
        close();
        name_ = std::move(o.name_);
        fd_ = std::exchange(o.fd_, -1);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

SharedMemory::~SharedMemory() { close(); }

std::span<std::byte> SharedMemory::buf() const {
    if (fd_ < 0) throw std::logic_error("mproc: shared memory is closed");
    return std::span<std::byte>(static_cast<std::byte*>(data_), size_);
}

void SharedMemory::close() noexcept {
    platform::unmap(data_, size_);
    data_ = nullptr;
    if (fd_ >= 0) platform::UniqueFd closer(std::exchange(fd_, -1));  // releases our shared flock
}

void SharedMemory::unlink() {
    platform::shm_remove(path_of(name_));
    detail::send_to_tracker('U', path_of(name_));
}

void SharedMemory::save(detail::OutputArchive& ar) const {
    if (fd_ < 0) throw std::logic_error("mproc: shared memory is closed");
    const std::uint32_t i = ar.add_fd(fd_);
    ar(i, name_, static_cast<std::uint64_t>(size_));
}

void SharedMemory::load(detail::InputArchive& ar) {
    std::uint32_t i = 0;
    std::uint64_t size = 0;
    std::string name;
    ar(i, name, size);
    platform::UniqueFd fd(ar.take_fd(i));
    if (size > platform::file_size(fd.get())) throw SerializationError("mproc: malformed SharedMemory");
    close();
    data_ = platform::map_shared(fd.get(), static_cast<std::size_t>(size));
    size_ = static_cast<std::size_t>(size);
    name_ = std::move(name);
    fd_ = fd.release();  // the same open file: it holds the sender's shared flock already
}

}  // namespace shared_memory
}  // namespace mproc
