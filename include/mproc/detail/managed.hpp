// mproc/detail/managed.hpp: the machinery under mproc/managers.hpp (not API): served objects
// ("servants"), the registry of the types a server can make, references, and the proxies' base.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "mproc/serialize.hpp"

namespace mproc::managers {

// Python: BaseManager(address=None, authkey=None, ...); the rest is mproc's.
struct ManagerOptions {
    // Empty: a fresh Linux abstract Unix socket name. {"127.0.0.1", 0}: loopback TCP on a free
    // port (address() tells which). Any other host needs an explicit authkey.
    connection::Address address = {};
    // Empty: the current process's authkey (children inherit it; another program cannot know it).
    std::optional<std::string> authkey = {};
    std::string start_method = {};  // of the server process (start())
    // A request or reply larger than this closes its connection (the server serves the others).
    std::size_t max_message_size = std::size_t{64} << 20;
    // Connections beyond this many at once are closed as soon as they are accepted.
    int max_connections = 256;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(address, authkey, start_method, max_message_size, max_connections);
    }
};

namespace detail {
using mproc::detail::InputArchive;
using mproc::detail::OutputArchive;

// A served object: a method name and typed arguments in, a typed result out.
class Servant {
public:
    virtual ~Servant() = default;
    // Unknown method: std::invalid_argument (the client gets it back as the same type).
    virtual void call(std::string_view method, InputArchive& in, OutputArchive& out) = 0;
    // True for objects that synchronize themselves and may block inside call() (queues, locks,
    // events): the server then does not hold the object's own mutex around the call.
    virtual bool concurrent() const noexcept { return false; }
};

using Factory = std::unique_ptr<Servant> (*)(InputArchive& init);
// The types a server can make, by key. Filled at static initialization by every proxy type this
// program instantiates, so a server (a fork or a fresh run of this program) knows them all.
void register_type(const std::string& key, Factory make);

template <class S>
struct Registered {
    static inline const bool done = (register_type(S::key(), [](InputArchive& init) -> std::unique_ptr<Servant> {
                                         auto s = std::make_unique<S>();
                                         s->init(init);
                                         return s;
                                     }),
                                     true);
};

// --- what servants that block need from the server ---

// The client the current server thread serves, as an opaque token (null outside a server).
const void* current_client() noexcept;
// True once the client of the current server thread has closed its connection (a blocked call
// then gives up, so that nothing is handed to a client that is gone).
bool client_gone() noexcept;
// Run `undo` if the current client disconnects before forget_on_disconnect(key): a Lock held
// by a client that died is released (Python leaves it locked forever).
void on_disconnect(const void* key, std::function<void()> undo);
void forget_on_disconnect(const void* key) noexcept;

// Thrown inside a servant when its client went away while it waited.
struct ClientGone : std::runtime_error {
    ClientGone() : std::runtime_error("mproc: the client went away") {}
};

using Clock = std::chrono::steady_clock;
inline std::optional<Clock::time_point> deadline_after(const Timeout& t) {
    if (!t) return std::nullopt;
    const auto d = std::max(*t, std::chrono::duration<double>::zero());
    if (d > std::chrono::hours(24 * 365)) return std::nullopt;
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(d);
}

// Waits on cv until pred(), in slices, so that a client that went away is noticed: false at
// the deadline; ClientGone when the client has gone.
template <class Pred>
bool wait_for_client(std::unique_lock<std::mutex>& lk, std::condition_variable& cv,
                     const std::optional<Clock::time_point>& deadline, Pred pred) {
    constexpr auto kSlice = std::chrono::milliseconds(100);
    while (!pred()) {
        const auto now = Clock::now();
        if (deadline && now >= *deadline) return false;
        const auto until = deadline ? std::min(*deadline, now + kSlice) : now + kSlice;
        cv.wait_until(lk, until);
        if (!pred() && client_gone()) throw ClientGone();
    }
    return true;
}

// --- references and calls ---

// This process's connections to one server: one per thread, so that a request and its reply
// are never interleaved with another thread's. Shared by the references to that server's
// objects and the managers using it; closed when the last of them goes (and a thread's own
// when the thread ends).
class Link;
std::shared_ptr<Link> link_to(const connection::Address& address, const std::string& authkey);

// A reference held by this process to a served object: the last copy's destruction tells the
// server.
//
// A fork child inherits its parent's references in memory, without a reference of its own; at
// its first use of one it takes one (as Python's proxies do after fork), and a child gives back
// every reference it holds as it ends (its destructors do not run: it ends with _exit). The
// parent's own reference covers the moment between: the Process object holds its arguments
// until it is gone.
class ObjectRef {
public:
    ObjectRef(std::shared_ptr<Link> link, std::uint64_t id);
    ~ObjectRef();
    ObjectRef(const ObjectRef&) = delete;
    ObjectRef& operator=(const ObjectRef&) = delete;

    // Sends a request and returns the reply's bytes; the server's error as its exception, a
    // dead server as mproc::ProcessError naming its address.
    std::string call(std::string_view method, const std::string& args) const;
    std::uint64_t id() const noexcept { return id_; }
    const connection::Address& address() const noexcept;
    const std::string& authkey() const noexcept;
    // For sending a proxy: one more reference, which the receiver's copy adopts.
    void add_reference() const;

    // Called in a child as it ends: returns this process's reference, if it holds one.
    void release_at_exit() noexcept;

private:
    // Takes a reference of this process's own, if this is a fork child's inherited copy.
    void adopt() const;
    std::shared_ptr<Link> link_;
    std::uint64_t id_;
    // The fork generation of the process that holds this reference (platform's counter).
    mutable std::atomic<unsigned> owner_;
};

// Creates an object of a registered type; its reference.
std::shared_ptr<ObjectRef> create(const std::shared_ptr<Link>& link, const std::string& key, const std::string& init);
// A reference to the object a server shares under `name`, which must be of type `key`.
std::shared_ptr<ObjectRef> lookup(const std::shared_ptr<Link>& link, const std::string& name, const std::string& key);

template <class... A>
std::string pack(const A&... args) {
    std::string out;
    OutputArchive ar(out);
    if constexpr (sizeof...(A) > 0) ar(args...);
    return out;
}

template <class R>
R unpack(const std::string& bytes) {
    if constexpr (std::is_void_v<R>) {
        return;
    } else {
        R r{};
        InputArchive ar(bytes, {});
        ar(r);
        return r;
    }
}

template <class T>
T take(InputArchive& in) {
    T x{};
    in(x);
    return x;
}

// What every proxy is: a shared reference, sendable (to a child, over a Connection, or into
// another managed object, where it is stored as a proxy of its own).
class ProxyBase {
public:
    void save(OutputArchive& ar) const {
        if (!ref_) throw std::logic_error("mproc: cannot send an empty proxy");
        ref_->add_reference();  // the receiver's copy adopts it
        ar(ref_->address(), ref_->authkey(), ref_->id());
    }
    void load(InputArchive& ar) {
        connection::Address address;
        std::string authkey;
        std::uint64_t id = 0;
        ar(address, authkey, id);
        ref_ = std::make_shared<ObjectRef>(link_to(address, authkey), id);
    }
    // Which object: proxies to the same object compare equal.
    bool operator==(const ProxyBase& o) const noexcept {
        return ref_ == o.ref_ || (ref_ && o.ref_ && ref_->id() == o.ref_->id() && ref_->address() == o.ref_->address());
    }

protected:
    ProxyBase() = default;
    explicit ProxyBase(std::shared_ptr<ObjectRef> ref) : ref_(std::move(ref)) {}
    template <class R, class... A>
    R invoke(std::string_view method, const A&... args) const {
        if (!ref_) throw std::logic_error("mproc: use of an empty proxy");
        return unpack<R>(ref_->call(method, pack(args...)));
    }

    std::shared_ptr<ObjectRef> ref_;
};

// An input iterator over a served object whose items come one request each, fetched when the
// item is first looked at (dereferenced, or compared with the end), as Python's next() on an
// iterator over a proxy: a change made to the object before then shows. Source::next() returns
// the next item, or nothing at the end; an iterator that reached the end stays there. Its end
// is std::default_sentinel.
template <class Item, class Source>
class FetchIterator {
public:
    using value_type = Item;
    using difference_type = std::ptrdiff_t;
    using reference = const Item&;
    using iterator_concept = std::input_iterator_tag;

    FetchIterator() = default;
    explicit FetchIterator(Source source) : source_(std::move(source)) {}

    // At the end: std::out_of_range.
    const Item& operator*() const {
        fill();
        if (!item_) throw std::out_of_range("mproc: dereferencing an iterator at its end");
        return *item_;
    }
    const Item* operator->() const { return &**this; }
    FetchIterator& operator++() {
        fill();
        if (item_) {
            item_.reset();
            fetched_ = false;
        }
        return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const FetchIterator& it, std::default_sentinel_t) {
        it.fill();
        return !it.item_;
    }

private:
    void fill() const {
        if (fetched_) return;
        item_ = source_.next();
        fetched_ = true;
    }
    mutable Source source_{};
    mutable std::optional<Item> item_;
    mutable bool fetched_ = false;
};

[[noreturn]] void no_method(std::string_view what, std::string_view method);

// --- the servants of SyncManager's container types ---

// Python's indexing: negative counts from the end; out of range: std::out_of_range (IndexError).
std::size_t python_index(std::int64_t i, std::size_t size, const char* what);

// Python's slice(start, stop, step) fitted to a sequence of `size` items (PySlice_AdjustIndices):
// an empty bound is None, negative bounds count from the end, bounds past either end are
// clamped. Item k of the slice (k < length) is at start + k * step. A step of 0:
// std::invalid_argument (Python: ValueError).
struct SliceRange {
    std::int64_t start = 0, stop = 0, step = 1;
    std::size_t length = 0;
    std::size_t at(std::size_t k) const { return static_cast<std::size_t>(start + static_cast<std::int64_t>(k) * step); }
};
SliceRange python_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop, std::int64_t step,
                        std::size_t size);

// Python's list.index(x, start, stop) bounds: negative counts from the end, then clamped to
// [0, size].
std::size_t python_bound(std::int64_t i, std::size_t size) noexcept;

template <class T>
concept less_comparable = requires(const T& a, const T& b) {
    { a < b } -> std::convertible_to<bool>;
};

template <class T>
class ListServant final : public Servant {
public:
    static std::string key() { return "list<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(items_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        if (m == "append") {
            items_.push_back(take<T>(in));
        } else if (m == "extend") {
            auto xs = take<std::vector<T>>(in);
            items_.insert(items_.end(), std::make_move_iterator(xs.begin()), std::make_move_iterator(xs.end()));
        } else if (m == "get") {
            out(items_[index(in, "list index out of range")]);
        } else if (m == "item") {  // for iteration (Python's __getitem__ until IndexError): empty past the end
            const auto i = take<std::uint64_t>(in);
            out(i < items_.size() ? std::optional<T>(items_[i]) : std::optional<T>());
        } else if (m == "set") {
            const std::size_t i = index(in, "list assignment index out of range");
            items_[i] = take<T>(in);
        } else if (m == "insert") {
            auto i = take<std::int64_t>(in);
            T x = take<T>(in);
            const auto n = static_cast<std::int64_t>(items_.size());
            if (i < 0) i = std::max<std::int64_t>(0, i + n);
            items_.insert(items_.begin() + std::min(i, n), std::move(x));
        } else if (m == "pop") {
            if (items_.empty()) throw std::out_of_range("mproc: pop from empty list");
            const std::size_t i = index(in, "pop index out of range");
            out(items_[i]);
            items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
        } else if (m == "remove") {
            auto it = std::find(items_.begin(), items_.end(), take<T>(in));
            if (it == items_.end()) throw std::invalid_argument("mproc: list.remove(x): x not in list");
            items_.erase(it);
        } else if (m == "index") {
            T x = take<T>(in);
            const auto first = items_.begin() + static_cast<std::ptrdiff_t>(python_bound(take<std::int64_t>(in), items_.size()));
            const auto last = items_.begin() + static_cast<std::ptrdiff_t>(python_bound(take<std::int64_t>(in), items_.size()));
            const auto it = first < last ? std::find(first, last, x) : last;
            if (it == last) throw std::invalid_argument("mproc: list.index(x): x not in list");
            out(static_cast<std::uint64_t>(it - items_.begin()));
        } else if (m == "count") {
            out(static_cast<std::uint64_t>(std::count(items_.begin(), items_.end(), take<T>(in))));
        } else if (m == "contains") {
            out(std::find(items_.begin(), items_.end(), take<T>(in)) != items_.end());
        } else if (m == "size") {
            out(static_cast<std::uint64_t>(items_.size()));
        } else if (m == "clear") {
            std::vector<T>().swap(items_);
        } else if (m == "to_vector") {
            out(items_);
        } else if (m == "slice") {
            const SliceRange s = slice(in);
            std::vector<T> part;
            part.reserve(s.length);
            for (std::size_t k = 0; k < s.length; ++k) part.push_back(items_[s.at(k)]);
            out(part);
        } else if (m == "set_slice") {
            const SliceRange s = slice(in);
            assign_slice(s, take<std::vector<T>>(in));
        } else if (m == "del_slice") {
            delete_slice(slice(in));
        } else if (m == "reverse") {
            std::reverse(items_.begin(), items_.end());
        } else if (m == "sort" && less_comparable<T>) {
            if constexpr (less_comparable<T>) {
                // Stable both ways, as Python's: equal items keep their order under reverse too.
                if (take<bool>(in))
                    std::stable_sort(items_.begin(), items_.end(), [](const T& a, const T& b) { return b < a; });
                else
                    std::stable_sort(items_.begin(), items_.end(), [](const T& a, const T& b) { return a < b; });
            }
        } else if (m == "imul") {  // Python: a *= n; n below 1 empties the list
            repeat(take<std::int64_t>(in));
        } else {
            no_method("list", m);
        }
    }

private:
    std::size_t index(InputArchive& in, const char* what) { return python_index(take<std::int64_t>(in), items_.size(), what); }
    SliceRange slice(InputArchive& in) {
        auto start = take<std::optional<std::int64_t>>(in);
        auto stop = take<std::optional<std::int64_t>>(in);
        return python_slice(start, stop, take<std::int64_t>(in), items_.size());
    }
    // Python: a[start:stop] = values replaces the items in the range with any number of
    // values; an extended slice (a step other than 1) takes exactly as many as it has items.
    void assign_slice(const SliceRange& s, std::vector<T> values) {
        if (s.step == 1) {
            const auto first = items_.begin() + s.start;
            items_.erase(first, first + static_cast<std::ptrdiff_t>(s.length));
            items_.insert(items_.begin() + s.start, std::make_move_iterator(values.begin()),
                          std::make_move_iterator(values.end()));
            return;
        }
        if (values.size() != s.length)
            throw std::invalid_argument("mproc: attempt to assign sequence of size " + std::to_string(values.size()) +
                                        " to extended slice of size " + std::to_string(s.length));
        for (std::size_t k = 0; k < s.length; ++k) items_[s.at(k)] = std::move(values[k]);
    }
    void delete_slice(const SliceRange& s) {
        if (s.step == 1) {
            const auto first = items_.begin() + s.start;
            items_.erase(first, first + static_cast<std::ptrdiff_t>(s.length));
            return;
        }
        std::vector<bool> gone(items_.size(), false);
        for (std::size_t k = 0; k < s.length; ++k) gone[s.at(k)] = true;
        std::vector<T> kept;
        kept.reserve(items_.size() - s.length);
        for (std::size_t i = 0; i < items_.size(); ++i)
            if (!gone[i]) kept.push_back(std::move(items_[i]));
        items_.swap(kept);
    }
    void repeat(std::int64_t n) {
        if (n <= 0 || items_.empty()) {
            std::vector<T>().swap(items_);
            return;
        }
        const std::size_t size = items_.size();
        if (static_cast<std::uint64_t>(n) > items_.max_size() / size)
            throw std::length_error("mproc: a list of " + std::to_string(size) + " items repeated " + std::to_string(n) +
                                    " times is too large");
        items_.reserve(size * static_cast<std::size_t>(n));
        for (std::int64_t r = 1; r < n; ++r)
            for (std::size_t i = 0; i < size; ++i) items_.push_back(items_[i]);
    }
    std::vector<T> items_;
};

// A dict keeps Python's insertion order (keys(), values(), iteration, popitem() taking the last
// one in): each key has a sequence number, and order_ lists the entries by it.
template <class K, class V>
class DictServant final : public Servant {
public:
    static std::string key() {
        return "dict<" + mproc::detail::type_name(typeid(K)) + "," + mproc::detail::type_name(typeid(V)) + ">";
    }
    void init(InputArchive& in) {
        for (auto& [k, v] : take<std::map<K, V>>(in)) put(k, std::move(v));
    }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        if (m == "set") {
            K k = take<K>(in);
            put(std::move(k), take<V>(in));
        } else if (m == "get") {
            out(at(take<K>(in))->second.value);
        } else if (m == "get_or") {
            K k = take<K>(in);
            V fallback = take<V>(in);
            auto it = map_.find(k);
            out(it == map_.end() ? fallback : it->second.value);
        } else if (m == "contains") {
            out(map_.count(take<K>(in)) != 0);
        } else if (m == "pop") {
            auto it = at(take<K>(in));
            out(it->second.value);
            erase(it);
        } else if (m == "pop_or") {
            K k = take<K>(in);
            V fallback = take<V>(in);
            auto it = map_.find(k);
            if (it == map_.end()) {
                out(fallback);
            } else {
                out(it->second.value);
                erase(it);
            }
        } else if (m == "popitem") {
            if (order_.empty()) throw std::out_of_range("mproc: popitem(): dictionary is empty");
            auto it = std::prev(order_.end())->second;
            out(std::pair<K, V>(it->first, it->second.value));
            erase(it);
        } else if (m == "setdefault") {
            K k = take<K>(in);
            V v = take<V>(in);
            auto it = map_.find(k);
            out((it == map_.end() ? put(std::move(k), std::move(v)) : it)->second.value);
        } else if (m == "update") {
            for (auto& [k, v] : take<std::map<K, V>>(in)) put(k, std::move(v));
        } else if (m == "size") {
            out(static_cast<std::uint64_t>(map_.size()));
        } else if (m == "items") {
            std::map<K, V> all;
            for (auto& [k, e] : map_) all.emplace_hint(all.end(), k, e.value);
            out(all);
        } else if (m == "keys") {
            std::vector<K> keys;
            keys.reserve(order_.size());
            for (auto& [seq, it] : order_) keys.push_back(it->first);
            out(keys);
        } else if (m == "values") {
            std::vector<V> values;
            values.reserve(order_.size());
            for (auto& [seq, it] : order_) values.push_back(it->second.value);
            out(values);
        } else if (m == "next_key") {  // for iteration: the key after sequence number `after`
            const auto expected = take<std::uint64_t>(in);
            const auto after = take<std::uint64_t>(in);
            if (expected != map_.size()) throw std::logic_error("mproc: dictionary changed size during iteration");
            auto next = order_.upper_bound(after);
            if (next == order_.end())
                out(std::optional<std::pair<std::uint64_t, K>>());
            else
                out(std::optional<std::pair<std::uint64_t, K>>(std::pair<std::uint64_t, K>(next->first, next->second->first)));
        } else if (m == "clear") {
            order_.clear();
            map_.clear();
        } else {
            no_method("dict", m);
        }
    }

private:
    struct Entry {
        V value;
        std::uint64_t seq;
    };
    using Iter = typename std::map<K, Entry>::iterator;
    Iter at(const K& k) {
        auto it = map_.find(k);
        if (it == map_.end()) throw std::out_of_range("mproc: key not in the managed dict");
        return it;
    }
    // A new key goes last; a key already there keeps its place, as in Python.
    Iter put(K k, V v) {
        auto it = map_.find(k);
        if (it != map_.end()) {
            it->second.value = std::move(v);
            return it;
        }
        it = map_.emplace(std::move(k), Entry{std::move(v), next_seq_}).first;
        order_.emplace_hint(order_.end(), next_seq_++, it);
        return it;
    }
    void erase(Iter it) {
        order_.erase(it->second.seq);
        map_.erase(it);
    }
    std::map<K, Entry> map_;
    std::map<std::uint64_t, Iter> order_;
    std::uint64_t next_seq_ = 1;  // 0 is "before the first" for next_key
};

template <class T>
class SetServant final : public Servant {
public:
    static std::string key() { return "set<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(items_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        if (m == "add") {
            items_.insert(take<T>(in));
        } else if (m == "discard") {
            items_.erase(take<T>(in));
        } else if (m == "remove") {
            if (items_.erase(take<T>(in)) == 0) throw std::out_of_range("mproc: set.remove(x): x not in set");
        } else if (m == "pop") {
            if (items_.empty()) throw std::out_of_range("mproc: pop from an empty set");
            out(*items_.begin());
            items_.erase(items_.begin());
        } else if (m == "contains") {
            out(items_.count(take<T>(in)) != 0);
        } else if (m == "update") {
            auto more = take<std::set<T>>(in);
            items_.merge(more);
        } else if (m == "size") {
            out(static_cast<std::uint64_t>(items_.size()));
        } else if (m == "clear") {
            items_.clear();
        } else if (m == "items") {
            out(items_);
        } else if (m == "union") {
            out(combine(take<std::set<T>>(in), Op::union_));
        } else if (m == "intersection") {
            out(combine(take<std::set<T>>(in), Op::intersection));
        } else if (m == "difference") {
            out(combine(take<std::set<T>>(in), Op::difference));
        } else if (m == "symmetric_difference") {
            out(combine(take<std::set<T>>(in), Op::symmetric_difference));
        } else if (m == "intersection_update") {
            items_ = combine(take<std::set<T>>(in), Op::intersection);
        } else if (m == "difference_update") {
            items_ = combine(take<std::set<T>>(in), Op::difference);
        } else if (m == "symmetric_difference_update") {
            items_ = combine(take<std::set<T>>(in), Op::symmetric_difference);
        } else if (m == "issubset") {
            const auto other = take<std::set<T>>(in);
            out(std::includes(other.begin(), other.end(), items_.begin(), items_.end()));
        } else if (m == "issuperset") {
            const auto other = take<std::set<T>>(in);
            out(std::includes(items_.begin(), items_.end(), other.begin(), other.end()));
        } else if (m == "isdisjoint") {
            const auto other = take<std::set<T>>(in);
            out(std::none_of(other.begin(), other.end(), [&](const T& x) { return items_.count(x) != 0; }));
        } else {
            no_method("set", m);
        }
    }

private:
    enum class Op { union_, intersection, difference, symmetric_difference };
    std::set<T> combine(const std::set<T>& other, Op op) const {
        std::set<T> r;
        auto to = std::inserter(r, r.end());
        const auto a0 = items_.begin(), a1 = items_.end();
        const auto b0 = other.begin(), b1 = other.end();
        switch (op) {
            case Op::union_: std::set_union(a0, a1, b0, b1, to); break;
            case Op::intersection: std::set_intersection(a0, a1, b0, b1, to); break;
            case Op::difference: std::set_difference(a0, a1, b0, b1, to); break;
            case Op::symmetric_difference: std::set_symmetric_difference(a0, a1, b0, b1, to); break;
        }
        return r;
    }
    std::set<T> items_;
};

template <class T>
class ValueServant final : public Servant {
public:
    static std::string key() { return "Value<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(value_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        if (m == "get")
            out(value_);
        else if (m == "set")
            in(value_);
        else
            no_method("Value", m);
    }

private:
    T value_{};
};

// Python: Manager().Array(typecode, sequence): a fixed size, items read and set by index.
template <class T>
class ArrayServant final : public Servant {
public:
    static std::string key() { return "Array<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(items_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        if (m == "get") {
            out(items_[python_index(take<std::int64_t>(in), items_.size(), "array index out of range")]);
        } else if (m == "set") {
            const std::size_t i = python_index(take<std::int64_t>(in), items_.size(), "array assignment index out of range");
            items_[i] = take<T>(in);
        } else if (m == "size") {
            out(static_cast<std::uint64_t>(items_.size()));
        } else if (m == "to_vector") {
            out(items_);
        } else if (m == "assign") {  // the whole array at once, of the same size
            auto xs = take<std::vector<T>>(in);
            if (xs.size() != items_.size())
                throw std::invalid_argument("mproc: an Array of " + std::to_string(items_.size()) + " cannot take " +
                                            std::to_string(xs.size()) + " items");
            items_ = std::move(xs);
        } else {
            no_method("Array", m);
        }
    }

private:
    std::vector<T> items_;
};

// A Namespace keeps each attribute as the bytes of a typed value (mproc::dumps): the server
// needs no type of its own for them, and a reader asking for the wrong type gets
// SerializationError naming both.
class NamespaceServant final : public Servant {
public:
    static std::string key() { return "Namespace"; }
    void init(InputArchive& in) { in(attrs_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override;

private:
    std::map<std::string, std::string> attrs_;
};

// A queue served by the manager (Python: Manager().Queue() / JoinableQueue()). Blocking calls
// block the caller's server thread only; one whose client goes away gives up without taking
// anything.
template <class T>
class QueueServant final : public Servant {
public:
    static std::string key() { return "Queue<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(maxsize_); }
    bool concurrent() const noexcept override { return true; }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        std::unique_lock lk(mu_);
        if (m == "put") {
            T x = take<T>(in);
            const bool block = take<bool>(in);
            const auto deadline = deadline_after(take<Timeout>(in));
            auto room = [&] { return maxsize_ <= 0 || static_cast<long>(items_.size()) < maxsize_; };
            if (!room() && (!block || !wait_for_client(lk, not_full_, deadline, room))) throw Full();
            items_.push_back(std::move(x));
            ++unfinished_;
            not_empty_.notify_one();
        } else if (m == "get") {
            const bool block = take<bool>(in);
            const auto deadline = deadline_after(take<Timeout>(in));
            auto ready = [&] { return !items_.empty(); };
            if (!ready() && (!block || !wait_for_client(lk, not_empty_, deadline, ready))) throw Empty();
            out(items_.front());
            items_.pop_front();
            not_full_.notify_one();
        } else if (m == "qsize") {
            out(static_cast<std::uint64_t>(items_.size()));
        } else if (m == "task_done") {
            if (unfinished_ == 0) throw std::logic_error("mproc: task_done() called too many times");
            if (--unfinished_ == 0) all_done_.notify_all();
        } else if (m == "join") {
            wait_for_client(lk, all_done_, std::nullopt, [&] { return unfinished_ == 0; });
        } else if (m == "maxsize") {
            out(static_cast<std::int64_t>(maxsize_));
        } else {
            no_method("Queue", m);
        }
    }

private:
    std::mutex mu_;
    std::condition_variable not_empty_, not_full_, all_done_;
    std::deque<T> items_;
    long maxsize_ = 0;
    std::uint64_t unfinished_ = 0;
};

// --- user types: MPROC_MANAGED(Type, method, ...) ---

// Specialized by MPROC_MANAGED: the name a type is served under and its exposed methods.
template <class T>
struct exposed;

template <class M>
struct method_traits;
template <class C, class R, class... A>
struct method_traits<R (C::*)(A...)> {
    using result = R;
    using args = std::tuple<std::decay_t<A>...>;
};
template <class C, class R, class... A>
struct method_traits<R (C::*)(A...) const> : method_traits<R (C::*)(A...)> {};
template <class C, class R, class... A>
struct method_traits<R (C::*)(A...) noexcept> : method_traits<R (C::*)(A...)> {};
template <class C, class R, class... A>
struct method_traits<R (C::*)(A...) const noexcept> : method_traits<R (C::*)(A...)> {};

template <class T>
class UserServant final : public Servant {
public:
    static std::string key() { return std::string("user:") + exposed<T>::name; }
    void init(InputArchive& in) {
        if constexpr (serializable<T>) {
            bool has = false;
            in(has);
            if (has) in(object_);
        }
    }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        bool found = false;
        std::apply([&](const auto&... entry) { (dispatch(entry, m, in, out, found) || ...); }, exposed<T>::methods());
        if (!found) no_method(exposed<T>::name, m);
    }

private:
    template <class Entry>
    bool dispatch(const Entry& entry, std::string_view m, InputArchive& in, OutputArchive& out, bool& found) {
        if (entry.first != m) return false;
        found = true;
        using Traits = method_traits<std::remove_cvref_t<decltype(entry.second)>>;
        auto args = take<typename Traits::args>(in);
        if constexpr (std::is_void_v<typename Traits::result>) {
            std::apply([&](auto&... a) { (object_.*entry.second)(std::move(a)...); }, args);
        } else {
            out(std::apply([&](auto&... a) { return (object_.*entry.second)(std::move(a)...); }, args));
        }
        return true;
    }
    T object_{};
};

}  // namespace detail
}  // namespace mproc::managers

// Serves a type through managers: MPROC_MANAGED(Counter, add, value) exposes Counter's methods
// add and value (by name; overloaded methods cannot be exposed). At namespace scope, once per
// program, at global scope. Then manager.create<Counter>() makes one in the server, and proxy.call(&Counter::add, 5)
// calls it there. Arguments and results must be serializable.
#define MPROC_MANAGED(Type, ...)                                                                        \
    template <>                                                                                         \
    struct mproc::managers::detail::exposed<Type> {                                                     \
        using type = Type;                                                                              \
        static constexpr const char* name = #Type;                                                      \
        static auto methods() { return std::make_tuple(MPROC_DETAIL_FOR_EACH(MPROC_DETAIL_METHOD, __VA_ARGS__)); } \
    };                                                                                                  \
    static const bool MPROC_DETAIL_CAT(mproc_managed_registered_, __LINE__) [[maybe_unused]] =            \
        mproc::managers::detail::Registered<mproc::managers::detail::UserServant<Type>>::done

#define MPROC_DETAIL_CAT2(a, b) a##b
#define MPROC_DETAIL_CAT(a, b) MPROC_DETAIL_CAT2(a, b)
#define MPROC_DETAIL_METHOD(m) std::make_pair(std::string_view(#m), &type::m)
#define MPROC_DETAIL_EXPAND(x) x
#define MPROC_DETAIL_FE_1(f, x) f(x)
#define MPROC_DETAIL_FE_2(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_1(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_3(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_2(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_4(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_3(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_5(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_4(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_6(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_5(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_7(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_6(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_8(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_7(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_9(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_8(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_10(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_9(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_11(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_10(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_12(f, x, ...) f(x), MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_11(f, __VA_ARGS__))
#define MPROC_DETAIL_FE_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, NAME, ...) NAME
#define MPROC_DETAIL_FOR_EACH(f, ...)                                                                          \
    MPROC_DETAIL_EXPAND(MPROC_DETAIL_FE_PICK(__VA_ARGS__, MPROC_DETAIL_FE_12, MPROC_DETAIL_FE_11, MPROC_DETAIL_FE_10, \
                                             MPROC_DETAIL_FE_9, MPROC_DETAIL_FE_8, MPROC_DETAIL_FE_7, MPROC_DETAIL_FE_6, \
                                             MPROC_DETAIL_FE_5, MPROC_DETAIL_FE_4, MPROC_DETAIL_FE_3, MPROC_DETAIL_FE_2, \
                                             MPROC_DETAIL_FE_1)(f, __VA_ARGS__))
