// The main guard and the start-method settings.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "mproc/context.hpp"
#include "forkserver.hpp"
#include "job.hpp"
#include "launch.hpp"
#include "platform/process.hpp"
#include "platform/system.hpp"
#include "shm_tracker.hpp"

namespace mproc {

namespace {
constexpr const char* kMethods[] = {"fork", "spawn", "forkserver"};
struct Settings {
    std::mutex mu;
    std::string executable = "/proc/self/exe";
    std::string program = "mproc-child";
};
Settings& settings() {
    static Settings s;
    return s;
}
std::atomic<bool> g_initialized{false};
// The default start method, as 1 + its index in kMethods (0: none set yet). An atomic rather than
// a string under Settings::mu, so that a fork child can set its Process's method (as Python's
// does) although another thread of its parent may have held that mutex across the fork.
std::atomic<int> g_method{0};

int method_index(std::string_view m) {
    for (int i = 0; i < 3; ++i)
        if (m == kMethods[i]) return i + 1;
    return 0;
}
bool valid_method(std::string_view m) { return method_index(m) != 0; }

[[noreturn]] void bad_child_args(const char* role) {
    std::fprintf(stderr, "mproc: %s: malformed child arguments\n", role);
    std::_Exit(70);
}

int parse_fd(const char* s, const char* role) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (!s[0] || *end || v < 0 || v > 1 << 20) bad_child_args(role);
    return static_cast<int>(v);
}
}  // namespace

namespace {
std::atomic<detail::InitHook> g_init_hook{nullptr};
}  // namespace

void detail::set_init_hook(InitHook hook) noexcept { g_init_hook.store(hook); }

void init(int argc, char** argv) {
    {
        Settings& s = settings();
        std::lock_guard lk(s.mu);
        if (argc > 0 && argv && argv[0]) s.program = argv[0];
    }
    if (const char* env = std::getenv("MPROC_START_METHOD"); env && *env) {
        if (!valid_method(env)) {
            std::fprintf(stderr, "mproc: MPROC_START_METHOD=%s is not fork, spawn or forkserver\n", env);
            std::exit(2);
        }
        int none = 0;
        g_method.compare_exchange_strong(none, method_index(env));
    }
    g_initialized = true;
    // The roles spawn_self() starts this executable in; none of them returns.
    static constexpr struct {
        const char* flag;
        void (*run)(int fd);
    } roles[] = {
        {"--mproc-spawn", [](int fd) { detail::run_job(fd, true); }},
        {"--mproc-forkserver", [](int fd) { detail::forkserver_main(fd); }},
        {"--mproc-tracker", [](int fd) { detail::tracker_main(fd); }},
    };
    if (argc >= 3 && argv[1])
        for (const auto& r : roles)
            if (std::strcmp(argv[1], r.flag) == 0) r.run(parse_fd(argv[2], r.flag));
    if (const detail::InitHook hook = g_init_hook.load()) hook(argc, argv);
}

bool initialized() noexcept { return g_initialized.load(); }

namespace detail {
void check_start_method(std::string_view method) {
    if (!valid_method(method))
        throw std::invalid_argument("mproc: cannot find context for '" + std::string(method) +
                                    "' (choose fork, spawn or forkserver)");
}
}  // namespace detail

void set_start_method(std::string_view method, bool force) {
    detail::check_start_method(method);
    const int want = method_index(method);
    if (force) {
        g_method.store(want);
        return;
    }
    int none = 0;
    if (!g_method.compare_exchange_strong(none, want)) throw std::logic_error("mproc: context has already been set");
}

std::string get_start_method() {
    int none = 0;
    g_method.compare_exchange_strong(none, method_index("fork"));  // fixes the default, as Python
    return kMethods[g_method.load() - 1];
}

std::optional<std::string> get_start_method(bool allow_none) {
    if (!allow_none) return get_start_method();
    const int m = g_method.load();
    if (m == 0) return std::nullopt;
    return std::string(kMethods[m - 1]);
}

std::vector<std::string> get_all_start_methods() { return {"fork", "spawn", "forkserver"}; }

void set_executable(std::string path) {
    Settings& s = settings();
    std::lock_guard lk(s.mu);
    s.executable = std::move(path);
}

std::string get_executable() {
    Settings& s = settings();
    std::lock_guard lk(s.mu);
    return s.executable;
}

int cpu_count() noexcept { return platform::cpu_count(); }
int process_cpu_count() noexcept { return platform::process_cpu_count(); }

namespace detail {
pid_t spawn_self(const char* role, int fd, std::span<const int> blocked) {
    std::string program;
    {
        Settings& s = settings();
        std::lock_guard lk(s.mu);
        program = s.program;  // argv[0] as given to init, so the children read well in ps
    }
    // The child has `fd` as descriptor 3 (spawn_process numbers what it keeps from 3).
    return platform::spawn_process(get_executable(), {program, std::string("--mproc-") + role, "3"},
                                   std::span<const int>(&fd, 1), blocked);
}
}  // namespace detail

}  // namespace mproc
