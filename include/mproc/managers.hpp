// mproc/managers.hpp: objects served by a process, used through typed proxies (Python:
// multiprocessing.managers). Started (issue 8): SyncManager with list, dict and Value on a local
// socket; the other types, BaseManager, network addresses and the fuzz test are to come.
//
//   mproc::managers::SyncManager m = mproc::Manager();   // starts the server process
//   auto records = m.list<std::string>({"a", "b"});
//   records.append("c"); records.size(); records.get(0); records.to_vector();
//   auto d = m.dict<std::string, int>();
//   d.set("k", 1); d.get("k"); d.get("missing", 0); d.contains("k"); d.keys(); d.pop("k");
//
// Proxies are copyable handles (copies share one reference to the served object) and may be
// given to a child process or a pool task under every start method. The server frees an
// object when the last proxy to it, in any process, is gone.
//
// Unlike Python's managers, the server never runs code a client names: a request names a
// registered type (the templates below, instantiated in this same program) and one of its
// methods; its arguments are typed values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "mproc/process.hpp"
#include "mproc/serialize.hpp"

namespace mproc::managers {

// Python: BaseManager(address=None, authkey=None, ...); start_method is mproc's addition.
struct ManagerOptions {
    connection::Address address = {};         // empty: a fresh abstract Unix socket name
    std::optional<std::string> authkey = {};  // empty: the current process's authkey
    std::string start_method = {};            // of the server process
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

// A reference held by this process to a served object: the last copy's destruction tells the
// server.
class ObjectRef {
public:
    ObjectRef(connection::Address address, std::string authkey, std::uint64_t id)
        : address_(std::move(address)), authkey_(std::move(authkey)), id_(id) {}
    ~ObjectRef();
    ObjectRef(const ObjectRef&) = delete;
    ObjectRef& operator=(const ObjectRef&) = delete;

    // Sends a request and returns the reply's bytes; the server's error as its exception, a
    // dead server as mproc::ProcessError naming its address.
    std::string call(std::string_view method, const std::string& args) const;
    std::uint64_t id() const noexcept { return id_; }
    const connection::Address& address() const noexcept { return address_; }
    const std::string& authkey() const noexcept { return authkey_; }
    // For sending a proxy: one more reference, which the receiver's copy adopts.
    void add_reference() const;

private:
    connection::Address address_;
    std::string authkey_;
    std::uint64_t id_;
};

// Creates an object of a registered type; its reference.
std::shared_ptr<ObjectRef> create(const connection::Address& address, const std::string& authkey,
                                  const std::string& key, const std::string& init);

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

// What every proxy is: a shared reference, sendable.
class ProxyBase {
public:
    // For children and connections: the receiver holds its own reference.
    void save(OutputArchive& ar) const {
        ref_->add_reference();
        ar(ref_->address(), ref_->authkey(), ref_->id());
    }
    void load(InputArchive& ar) {
        connection::Address address;
        std::string authkey;
        std::uint64_t id = 0;
        ar(address, authkey, id);
        ref_ = std::make_shared<ObjectRef>(std::move(address), std::move(authkey), id);
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

template <class T>
class ListServant final : public Servant {
public:
    static std::string key() { return "list<" + mproc::detail::type_name(typeid(T)) + ">"; }
    void init(InputArchive& in) { in(items_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        if (m == "append") {
            T x{};
            in(x);
            items_.push_back(std::move(x));
        } else if (m == "extend") {
            std::vector<T> xs;
            in(xs);
            items_.insert(items_.end(), std::make_move_iterator(xs.begin()), std::make_move_iterator(xs.end()));
        } else if (m == "get") {
            out(items_.at(index(in, false)));
        } else if (m == "set") {
            const std::size_t i = index(in, false);
            in(items_.at(i));
        } else if (m == "insert") {
            std::int64_t i = 0;
            T x{};
            in(i, x);
            const auto n = static_cast<std::int64_t>(items_.size());
            if (i < 0) i = std::max<std::int64_t>(0, i + n);
            items_.insert(items_.begin() + std::min(i, n), std::move(x));
        } else if (m == "pop") {
            const std::size_t i = index(in, true);
            out(items_.at(i));
            items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
        } else if (m == "remove") {
            T x{};
            in(x);
            auto it = std::find(items_.begin(), items_.end(), x);
            if (it == items_.end()) throw std::invalid_argument("mproc: list.remove(x): x not in list");
            items_.erase(it);
        } else if (m == "index") {
            T x{};
            in(x);
            auto it = std::find(items_.begin(), items_.end(), x);
            if (it == items_.end()) throw std::invalid_argument("mproc: list.index(x): x not in list");
            out(static_cast<std::uint64_t>(it - items_.begin()));
        } else if (m == "count") {
            T x{};
            in(x);
            out(static_cast<std::uint64_t>(std::count(items_.begin(), items_.end(), x)));
        } else if (m == "size") {
            out(static_cast<std::uint64_t>(items_.size()));
        } else if (m == "clear") {
            items_.clear();
        } else if (m == "to_vector") {
            out(items_);
        } else {
            throw std::invalid_argument("mproc: a managed list has no method '" + std::string(m) + "'");
        }
    }

private:
    // Python's indexing: negative counts from the end; out of range: std::out_of_range
    // (IndexError).
    std::size_t index(InputArchive& in, bool pop) {
        std::int64_t i = 0;
        in(i);
        const auto n = static_cast<std::int64_t>(items_.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n)
            throw std::out_of_range(pop ? "mproc: pop index out of range" : "mproc: list index out of range");
        return static_cast<std::size_t>(i);
    }
    std::vector<T> items_;
};

template <class K, class V>
class DictServant final : public Servant {
public:
    static std::string key() {
        return "dict<" + mproc::detail::type_name(typeid(K)) + "," + mproc::detail::type_name(typeid(V)) + ">";
    }
    void init(InputArchive& in) { in(map_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        if (m == "set") {
            K k{};
            V v{};
            in(k, v);
            map_.insert_or_assign(std::move(k), std::move(v));
        } else if (m == "get") {
            K k{};
            in(k);
            auto it = map_.find(k);
            if (it == map_.end()) throw std::out_of_range("mproc: key not in the managed dict");
            out(it->second);
        } else if (m == "get_or") {
            K k{};
            V fallback{};
            in(k, fallback);
            auto it = map_.find(k);
            out(it == map_.end() ? fallback : it->second);
        } else if (m == "contains") {
            K k{};
            in(k);
            out(map_.count(k) != 0);
        } else if (m == "pop") {
            K k{};
            in(k);
            auto it = map_.find(k);
            if (it == map_.end()) throw std::out_of_range("mproc: key not in the managed dict");
            out(it->second);
            map_.erase(it);
        } else if (m == "setdefault") {
            K k{};
            V v{};
            in(k, v);
            out(map_.try_emplace(std::move(k), std::move(v)).first->second);
        } else if (m == "update") {
            std::map<K, V> more;
            in(more);
            for (auto& [k, v] : more) map_.insert_or_assign(k, std::move(v));
        } else if (m == "size") {
            out(static_cast<std::uint64_t>(map_.size()));
        } else if (m == "items") {
            out(map_);
        } else if (m == "clear") {
            map_.clear();
        } else {
            throw std::invalid_argument("mproc: a managed dict has no method '" + std::string(m) + "'");
        }
    }

private:
    std::map<K, V> map_;
};

// A Namespace keeps each attribute as the bytes of a typed value (mproc::dumps): the server
// needs no type of its own for them, and a reader asking for the wrong type gets
// SerializationError naming both.
class NamespaceServant final : public Servant {
public:
    static std::string key() { return "Namespace"; }
    void init(InputArchive& in) { in(attrs_); }
    void call(std::string_view m, InputArchive& in, OutputArchive& out) override {
        std::string name;
        if (m == "set") {
            std::string bytes;
            in(name, bytes);
            attrs_.insert_or_assign(std::move(name), std::move(bytes));
        } else if (m == "get") {
            in(name);
            auto it = attrs_.find(name);
            if (it == attrs_.end()) throw std::out_of_range("mproc: the Namespace has no attribute '" + name + "'");
            out(it->second);
        } else if (m == "has") {
            in(name);
            out(attrs_.count(name) != 0);
        } else if (m == "del") {
            in(name);
            if (attrs_.erase(name) == 0) throw std::out_of_range("mproc: the Namespace has no attribute '" + name + "'");
        } else if (m == "names") {
            std::vector<std::string> names;
            for (auto& [k, v] : attrs_) names.push_back(k);
            out(names);
        } else {
            throw std::invalid_argument("mproc: a Namespace has no method '" + std::string(m) + "'");
        }
    }

private:
    std::map<std::string, std::string> attrs_;
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
            throw std::invalid_argument("mproc: a managed Value has no method '" + std::string(m) + "'");
    }

private:
    T value_{};
};
}  // namespace detail

template <class T>
class ListProxy : public detail::ProxyBase {
public:
    ListProxy() { (void)detail::Registered<detail::ListServant<T>>::done; }
    void append(const T& x) { invoke<void>("append", x); }
    void extend(const std::vector<T>& xs) { invoke<void>("extend", xs); }
    T get(std::int64_t i) const { return invoke<T>("get", i); }
    void set(std::int64_t i, const T& x) { invoke<void>("set", i, x); }
    void insert(std::int64_t i, const T& x) { invoke<void>("insert", i, x); }
    T pop(std::int64_t i = -1) { return invoke<T>("pop", i); }
    // The first x: std::invalid_argument when there is none (Python: ValueError).
    void remove(const T& x) { invoke<void>("remove", x); }
    std::size_t index(const T& x) const { return static_cast<std::size_t>(invoke<std::uint64_t>("index", x)); }
    std::size_t count(const T& x) const { return static_cast<std::size_t>(invoke<std::uint64_t>("count", x)); }
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    void clear() { invoke<void>("clear"); }
    std::vector<T> to_vector() const { return invoke<std::vector<T>>("to_vector"); }

private:
    explicit ListProxy(std::shared_ptr<detail::ObjectRef> ref) : ProxyBase(std::move(ref)) {}
    friend class SyncManager;
};

template <class K, class V>
class DictProxy : public detail::ProxyBase {
public:
    DictProxy() { (void)detail::Registered<detail::DictServant<K, V>>::done; }
    void set(const K& k, const V& v) { invoke<void>("set", k, v); }
    V get(const K& k) const { return invoke<V>("get", k); }
    V get(const K& k, const V& fallback) const { return invoke<V>("get_or", k, fallback); }
    bool contains(const K& k) const { return invoke<bool>("contains", k); }
    V pop(const K& k) { return invoke<V>("pop", k); }
    // The value at k, set to v first when k is absent.
    V setdefault(const K& k, const V& v) { return invoke<V>("setdefault", k, v); }
    void update(const std::map<K, V>& more) { invoke<void>("update", more); }
    std::vector<V> values() const {
        std::vector<V> out;
        for (auto& [k, v] : items()) out.push_back(v);
        return out;
    }
    // A plain copy of the whole dict (Python: copy(), which returns a dict).
    std::map<K, V> copy() const { return items(); }
    std::size_t size() const { return static_cast<std::size_t>(invoke<std::uint64_t>("size")); }
    std::map<K, V> items() const { return invoke<std::map<K, V>>("items"); }
    std::vector<K> keys() const {
        std::vector<K> out;
        for (auto& [k, v] : items()) out.push_back(k);
        return out;
    }
    void clear() { invoke<void>("clear"); }

private:
    explicit DictProxy(std::shared_ptr<detail::ObjectRef> ref) : ProxyBase(std::move(ref)) {}
    friend class SyncManager;
};

template <class T>
class ValueProxy : public detail::ProxyBase {
public:
    ValueProxy() { (void)detail::Registered<detail::ValueServant<T>>::done; }
    T get() const { return invoke<T>("get"); }
    void set(const T& v) { invoke<void>("set", v); }

private:
    explicit ValueProxy(std::shared_ptr<detail::ObjectRef> ref) : ProxyBase(std::move(ref)) {}
    friend class SyncManager;
};

// Python: Namespace, whose attributes are set and read by name: here each holds a value of any
// serializable type, read back as the type it was set with.
class NamespaceProxy : public detail::ProxyBase {
public:
    NamespaceProxy() { (void)detail::Registered<detail::NamespaceServant>::done; }
    template <class T>
    void set(const std::string& name, const T& value) {
        invoke<void>("set", name, dumps(value));
    }
    // No such attribute: std::out_of_range (Python: AttributeError); another type:
    // mproc::SerializationError.
    template <class T>
    T get(const std::string& name) const {
        return loads<T>(invoke<std::string>("get", name));
    }
    bool has(const std::string& name) const { return invoke<bool>("has", name); }
    void del(const std::string& name) { invoke<void>("del", name); }
    std::vector<std::string> names() const { return invoke<std::vector<std::string>>("names"); }

private:
    explicit NamespaceProxy(std::shared_ptr<detail::ObjectRef> ref) : ProxyBase(std::move(ref)) {}
    friend class SyncManager;
};

// Python: multiprocessing.managers.SyncManager (the object types so far: list, dict, Value,
// Namespace).
class SyncManager {
public:
    explicit SyncManager(ManagerOptions options = {});
    SyncManager(SyncManager&&) noexcept;
    SyncManager& operator=(SyncManager&&) noexcept;
    ~SyncManager();  // shuts the server down, as Python's __exit__

    // Starts the server process; returns once it listens. Twice: std::logic_error.
    void start();
    // Stops the server (its objects go with it); proxies fail afterwards. Idempotent.
    void shutdown();
    const connection::Address& address() const;
    // How many objects the server holds (Python: the debugging helper _number_of_objects()).
    std::size_t number_of_objects() const;

    template <class T>
    ListProxy<T> list(const std::vector<T>& initial = {}) {
        (void)detail::Registered<detail::ListServant<T>>::done;
        return ListProxy<T>(make(detail::ListServant<T>::key(), detail::pack(initial)));
    }
    template <class K, class V>
    DictProxy<K, V> dict(const std::map<K, V>& initial = {}) {
        (void)detail::Registered<detail::DictServant<K, V>>::done;
        return DictProxy<K, V>(make(detail::DictServant<K, V>::key(), detail::pack(initial)));
    }
    template <class T>
    ValueProxy<T> Value(const T& initial = T{}) {
        (void)detail::Registered<detail::ValueServant<T>>::done;
        return ValueProxy<T>(make(detail::ValueServant<T>::key(), detail::pack(initial)));
    }

    NamespaceProxy Namespace() {
        (void)detail::Registered<detail::NamespaceServant>::done;
        return NamespaceProxy(make(detail::NamespaceServant::key(), detail::pack(std::map<std::string, std::string>{})));
    }

private:
    std::shared_ptr<detail::ObjectRef> make(const std::string& key, const std::string& init);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mproc::managers

namespace mproc {
// A started SyncManager (Python: multiprocessing.Manager()).
managers::SyncManager Manager(managers::ManagerOptions options = {});
}  // namespace mproc
