// mproc/detail/manager_client.hpp: the client side of a manager, under the proxies (not API):
// this process's connections to a server, its references to served objects, the proxies' base
// classes, and the iterator that fetches a served object's items one request at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mproc/connection.hpp"
#include "mproc/detail/manager_methods.hpp"

namespace mproc::managers {
class BaseManager;
class SyncManager;
}  // namespace mproc::managers

// Every proxy type P is made from a reference by the managers only (a user gets one from a
// manager, or default-made and empty).
#define MPROC_DETAIL_PROXY_ACCESS(P)                                    \
protected:                                                              \
    explicit P(std::shared_ptr<detail::ObjectRef> ref) : proxy_base(std::move(ref)) {} \
    friend class BaseManager;                                           \
    friend class SyncManager

namespace mproc::managers::detail {

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
    using proxy_base = ProxyBase;
    ProxyBase() = default;
    explicit ProxyBase(std::shared_ptr<ObjectRef> ref) : ref_(std::move(ref)) {}
    // A call by the method's name: for types exposed with MPROC_MANAGED, whose names the macro
    // spells; the standard types call through TypedProxy.
    template <class R, class... A>
    R invoke_named(std::string_view method, const A&... args) const {
        if (!ref_) throw std::logic_error("mproc: use of an empty proxy");
        return unpack<R>(ref_->call(method, pack(args...)));
    }

    std::shared_ptr<ObjectRef> ref_;
};

// A proxy to a served type whose methods are the set `Set` (manager_methods.hpp): it can call
// those and no other, so a method missing from the set, or taken from another type's, does not
// compile.
template <method_set Set>
class TypedProxy : public ProxyBase {
protected:
    using proxy_base = TypedProxy;
    using Method = Set;
    TypedProxy() = default;
    explicit TypedProxy(std::shared_ptr<ObjectRef> ref) : ProxyBase(std::move(ref)) {}
    template <class R, class M, class... A>
    R invoke(M method, const A&... args) const {
        static_assert(std::is_same_v<M, Set>, "mproc: a proxy calls only the methods of the type it serves");
        return invoke_named<R>(method_name(method), args...);
    }
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

}  // namespace mproc::managers::detail
