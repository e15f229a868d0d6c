// Coroutines and event loops (issue 18): mproc's results awaited in a coroutine of your own type,
// and mproc's objects watched by an event loop (epoll here; Asio's posix::stream_descriptor or
// libuv's uv_poll_t take the same descriptors).
//
// 1. `co_await ex.submit(f, args...)` and `co_await pool.apply_async(f, args...)`: Python's
//    `await asyncio.wrap_future(ex.submit(f, *args))`. No thread waits meanwhile; the coroutine
//    goes on where the result was completed (a done-callback's thread), so this Task hands
//    itself back to the loop's thread with `co_await loop.resume_here()`, as asyncio's
//    wrap_future does with call_soon_threadsafe.
// 2. One epoll loop over a queue that a child process fills (q.fileno(): readable while an item
//    waits), a future (f.sentinel()), and the child (p.sentinel()), and
//    mproc::connection::wait over the same kinds of objects.
#include <sys/epoll.h>
#include <unistd.h>

#include <coroutine>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace cf = mproc::futures;

int add(int a, int b) { return a + b; }
int square(int x) { return x * x; }
// Fails for an odd number, as a task that raises.
int half(int x) {
    if (x % 2 != 0) throw std::invalid_argument("odd: " + std::to_string(x));
    return x / 2;
}
void produce(mproc::Queue<int> q) {
    for (int i = 1; i <= 3; ++i) q.put(i * 10);
    q.put(-1);
}

// A loop on this thread: callbacks posted from any thread, run here; an eventfd stands in for
// the wake-up a real loop has (Asio's io_context::post, libuv's uv_async_send).
class Loop {
public:
    void post(std::function<void()> f) {
        {
            std::lock_guard lk(mu_);
            ready_.push_back(std::move(f));
        }
        wake_.put(0);
    }
    // What a coroutine awaits to go on in the loop's thread.
    auto resume_here() {
        struct Hop {
            Loop* loop;
            bool await_ready() const noexcept { return false; }
            void await_suspend(std::coroutine_handle<> h) const { loop->post([h] { h.resume(); }); }
            void await_resume() const noexcept {}
        };
        return Hop{this};
    }
    // Runs posted callbacks until `until` holds.
    void run(const std::function<bool()>& until) {
        while (!until()) {
            (void)mproc::connection::wait({wake_}, 10s);
            try {
                for (;;) (void)wake_.get_nowait();
            } catch (const mproc::Empty&) {
            }
            std::deque<std::function<void()>> now;
            {
                std::lock_guard lk(mu_);
                now.swap(ready_);
            }
            for (auto& f : now) f();
        }
    }

private:
    std::mutex mu_;
    std::deque<std::function<void()>> ready_;
    mproc::Queue<int> wake_;  // its fileno() is the loop's wake-up descriptor
};

// The smallest coroutine type: starts at once, frees itself at the end.
struct Task {
    struct promise_type {
        Task get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

Task compute(Loop& loop, cf::ProcessPoolExecutor& ex, mproc::Pool& pool, bool& finished) {
    const int three = co_await ex.submit(add, 1, 2);
    co_await loop.resume_here();
    std::cout << "co_await ex.submit(add, 1, 2) = " << three << std::endl;
    const int forty_nine = co_await pool.apply_async(square, 7);
    co_await loop.resume_here();
    std::cout << "co_await pool.apply_async(square, 7) = " << forty_nine << std::endl;
    try {
        co_await ex.submit(half, 7);
    } catch (const std::invalid_argument& e) {
        std::cout << "co_await a failing task: std::invalid_argument: " << e.what() << std::endl;
    }
    co_await loop.resume_here();
    finished = true;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    cf::ProcessPoolExecutor ex(2);
    {
        mproc::Pool pool(2);
        Loop loop;
        bool finished = false;
        compute(loop, ex, pool, finished);
        loop.run([&] { return finished; });
    }

    // An epoll loop over a queue, a future and a process.
    mproc::Queue<int> q;
    mproc::Process p(produce, q);
    p.start();
    cf::Future<int> f = ex.submit(square, 12);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int fd : {q.fileno(), f.sentinel(), p.sentinel()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    std::vector<int> items;
    int result = 0;
    bool queue_done = false, future_done = false, process_done = false;
    while (!(queue_done && future_done && process_done)) {
        epoll_event evs[3];
        const int n = epoll_wait(ep, evs, 3, 10000);
        if (n <= 0) break;
        for (int i = 0; i < n; ++i) {
            const int fd = evs[i].data.fd;
            if (fd == q.fileno()) {
                try {
                    for (;;) {  // take what is there; the descriptor is unreadable once it is empty
                        const int x = q.get_nowait();
                        if (x < 0)
                            queue_done = true;
                        else
                            items.push_back(x);
                    }
                } catch (const mproc::Empty&) {
                }
            } else if (fd == f.sentinel()) {
                result = f.result();
                future_done = true;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);  // a sentinel stays readable
            } else if (fd == p.sentinel()) {
                p.join();
                process_done = true;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
            }
        }
    }
    close(ep);
    std::cout << "epoll: the queue gave";
    for (int x : items) std::cout << ' ' << x;
    std::cout << "; the future gave " << result << "; the process ended with exitcode " << *p.exitcode() << std::endl;

    // connection::wait over the same kinds of objects (Python: multiprocessing.connection.wait).
    auto [r, w] = mproc::Pipe(false);
    cf::Future<int> g = ex.submit(add, 20, 22);
    mproc::Queue<std::string> q2;
    std::cout << "wait(..., timeout=0.05) with nothing ready: " << mproc::connection::wait({&r, q2}, 50ms).size()
              << " ready" << std::endl;
    q2.put("hello");
    w.send(std::string("world"));
    g.result();
    const auto ready = mproc::connection::wait({&r, q2, g}, 10s);
    std::cout << "wait after a put, a send and a result: " << ready.size() << " ready: " << q2.get() << ' '
              << r.recv<std::string>() << ' ' << g.result() << std::endl;
}
