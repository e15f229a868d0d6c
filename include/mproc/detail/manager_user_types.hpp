// mproc/detail/manager_user_types.hpp: user types served by managers (not API): the servant
// that runs the methods MPROC_MANAGED(Type, method, ...) exposes, and the macro itself. A user
// type's methods are named once, by the macro, from their member names: the proxy finds the name
// of the member it is given (Proxy<T>::call(&T::method)) and the servant the member of the name
// it is sent.
#pragma once

#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mproc/detail/manager_servant.hpp"
#include "mproc/serialize.hpp"

namespace mproc::managers::detail {

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

template <class E, class M>
bool same_method(E e, M m) {
    if constexpr (std::is_same_v<E, M>) return e == m;
    else return false;
}

// The name MPROC_MANAGED gave `method` of T; empty when it was not exposed.
template <class T, class M>
std::string_view exposed_name(M method) {
    std::string_view name;
    std::apply([&](const auto&... e) { (void)((same_method(e.second, method) && (name = e.first, true)) || ...); },
               exposed<T>::methods());
    return name;
}

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

}  // namespace mproc::managers::detail

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
