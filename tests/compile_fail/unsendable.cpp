// Must NOT compile, once per case (-DCASE_<name>): a value that cannot go to another process,
// sent through each entry point. check_compile_fail.cmake checks that the first error is mproc's
// one message and that it names the type (issue 14, section 3: the error used to depend on the
// entry point: one mproc line for a Process argument, 61 lines of cereal for a Pool::map argument,
// "no matching function for call to loads" for Queue<T>::put).
#include <memory>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

struct NotSerializableWidget {
    std::string name;  // not trivially copyable, and no serialize(): nothing can send it
};
struct PointerCarrier {
    const char* label;  // copied as bytes, it would point at nothing in another process
    int n;
};
class SealedCounter {  // trivially copyable, but its members are private: mproc cannot look
public:
    SealedCounter() = default;
    int get() const { return n_; }

private:
    int n_ = 0;
};

int use_widget(NotSerializableWidget w) { return static_cast<int>(w.name.size()); }
int use_carrier(PointerCarrier c) { return c.n; }
NotSerializableWidget make_widget(int) { return {}; }
int use_widgets(std::vector<NotSerializableWidget> ws) { return static_cast<int>(ws.size()); }
int use_widget_ptr(std::unique_ptr<int> p) { return *p; }

int main(int argc, char** argv) {
    mproc::init(argc, argv);
#if defined(CASE_process_argument)
    mproc::Process p(use_widget, NotSerializableWidget{"w"});
    p.start();
#elif defined(CASE_pool_map_pointer_member)
    mproc::Pool pool(2);
    std::vector<PointerCarrier> items{{"a", 1}};
    (void)pool.map(use_carrier, items);
#elif defined(CASE_pool_result)
    mproc::Pool pool(2);
    (void)pool.apply(make_widget, 1);
#elif defined(CASE_executor_argument)
    mproc::futures::ProcessPoolExecutor ex(2);
    (void)ex.submit(use_widgets, std::vector<NotSerializableWidget>{});
#elif defined(CASE_executor_result)
    mproc::futures::ProcessPoolExecutor ex(2);
    (void)ex.submit(make_widget, 1).result();
#elif defined(CASE_queue_put)
    mproc::Queue<NotSerializableWidget> q;
    q.put(NotSerializableWidget{"w"});
#elif defined(CASE_queue_get_opaque)
    mproc::Queue<SealedCounter> q;
    (void)q.get();
#elif defined(CASE_pipe_send)
    auto [a, b] = mproc::Pipe();
    a.send(PointerCarrier{"a", 1});
#elif defined(CASE_dumps)
    (void)mproc::dumps(std::vector<PointerCarrier>{});
#elif defined(CASE_manager_list)
    auto m = mproc::Manager();
    auto l = m.list<NotSerializableWidget>();
    l.append(NotSerializableWidget{"w"});
#elif defined(CASE_manager_value_pointer)
    auto m = mproc::Manager();
    auto v = m.Value<PointerCarrier>(PointerCarrier{"a", 1});
    (void)v.value();
#elif defined(CASE_shared_value_pointer)
    mproc::Value<PointerCarrier> v(PointerCarrier{"a", 1});
#elif defined(CASE_smart_pointer)
    mproc::Pool pool(2);
    (void)pool.apply(use_widget_ptr, std::make_unique<int>(1));
#else
#error "no CASE_ given"
#endif
}
