// Exceptions across processes: a registry of rebuildable types, keyed by mangled type name.
#include <cxxabi.h>

#include <future>
#include <ios>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <typeinfo>
#include <variant>

#include "mproc/detail/exceptions.hpp"
#include "mproc/errors.hpp"
#include "mproc/serialize.hpp"

namespace mproc::detail {

namespace {
using Registry = std::map<std::string, ExceptionFactory, std::less<>>;

template <class E>
std::exception_ptr make_fixed(const std::string&) {
    return std::make_exception_ptr(E());
}

Registry& registry() {
    static Registry* r = [] {
        auto* m = new Registry;
        auto add = [&](const std::type_info& t, ExceptionFactory f) { (*m)[t.name()] = f; };
        // Standard exceptions constructible from a message.
        add(typeid(std::logic_error), &make_exception_from_what<std::logic_error>);
        add(typeid(std::invalid_argument), &make_exception_from_what<std::invalid_argument>);
        add(typeid(std::domain_error), &make_exception_from_what<std::domain_error>);
        add(typeid(std::length_error), &make_exception_from_what<std::length_error>);
        add(typeid(std::out_of_range), &make_exception_from_what<std::out_of_range>);
        add(typeid(std::runtime_error), &make_exception_from_what<std::runtime_error>);
        add(typeid(std::range_error), &make_exception_from_what<std::range_error>);
        add(typeid(std::overflow_error), &make_exception_from_what<std::overflow_error>);
        add(typeid(std::underflow_error), &make_exception_from_what<std::underflow_error>);
        // Standard exceptions whose what() is fixed.
        add(typeid(std::exception), &make_fixed<std::exception>);
        add(typeid(std::bad_alloc), &make_fixed<std::bad_alloc>);
        add(typeid(std::bad_array_new_length), &make_fixed<std::bad_array_new_length>);
        add(typeid(std::bad_cast), &make_fixed<std::bad_cast>);
        add(typeid(std::bad_typeid), &make_fixed<std::bad_typeid>);
        add(typeid(std::bad_optional_access), &make_fixed<std::bad_optional_access>);
        add(typeid(std::bad_variant_access), &make_fixed<std::bad_variant_access>);
        add(typeid(std::bad_function_call), &make_fixed<std::bad_function_call>);
        add(typeid(std::bad_exception), &make_fixed<std::bad_exception>);
        // mproc's own.
        add(typeid(ProcessError), &make_exception_from_what<ProcessError>);
        add(typeid(AuthenticationError), &make_exception_from_what<AuthenticationError>);
        add(typeid(TimeoutError), &make_exception_from_what<TimeoutError>);
        add(typeid(WorkerLostError), &make_exception_from_what<WorkerLostError>);
        add(typeid(SerializationError), &make_exception_from_what<SerializationError>);
        add(typeid(Empty), &make_exception_from_what<Empty>);
        add(typeid(Full), &make_exception_from_what<Full>);
        add(typeid(ShutDown), &make_exception_from_what<ShutDown>);
        add(typeid(EOFError), &make_exception_from_what<EOFError>);
        add(typeid(BrokenBarrierError), &make_exception_from_what<BrokenBarrierError>);
        add(typeid(futures::BrokenExecutor), &make_exception_from_what<futures::BrokenExecutor>);
        add(typeid(futures::BrokenProcessPool), &make_exception_from_what<futures::BrokenProcessPool>);
        add(typeid(futures::BrokenThreadPool), &make_exception_from_what<futures::BrokenThreadPool>);
        add(typeid(futures::CancelledError), &make_exception_from_what<futures::CancelledError>);
        add(typeid(futures::InvalidStateError), &make_exception_from_what<futures::InvalidStateError>);
        return m;
    }();
    return *r;
}

std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}

// The kinds that need more than a message to rebuild.
enum class Kind : std::uint8_t { Plain = 0, SystemError = 1, FutureError = 2, IosFailure = 3,
                                 BufferTooShort = 4, RemoteError = 5, NotStd = 6 };

std::string strip_suffix(const std::string& what, const std::string& suffix) {
    const std::string tail = ": " + suffix;
    if (what.size() >= tail.size() && what.compare(what.size() - tail.size(), tail.size(), tail) == 0)
        return what.substr(0, what.size() - tail.size());
    if (what == suffix) return {};
    return what;
}

const std::error_category& category_named(const std::string& name) {
    if (name == std::system_category().name()) return std::system_category();
    if (name == std::iostream_category().name()) return std::iostream_category();
    if (name == std::future_category().name()) return std::future_category();
    return std::generic_category();
}
}  // namespace

bool register_exception_type(const char* mangled_name, ExceptionFactory make) {
    std::lock_guard lk(registry_mutex());
    registry()[mangled_name] = make;
    return true;
}

void save_exception(OutputArchive& ar, const std::exception_ptr& e) {
    std::string mangled, what, extra;
    Kind kind = Kind::Plain;
    int code = 0;
    try {
        std::rethrow_exception(e);
    } catch (const BufferTooShort& x) {
        kind = Kind::BufferTooShort;
        mangled = typeid(x).name();
        extra = x.message();
    } catch (const RemoteError& x) {
        kind = Kind::RemoteError;
        mangled = typeid(x).name();
        what = x.original_message();
        extra = x.type_name();
    } catch (const std::future_error& x) {
        kind = Kind::FutureError;
        mangled = typeid(x).name();
        what = x.what();
        code = x.code().value();
    } catch (const std::ios_base::failure& x) {
        kind = Kind::IosFailure;
        mangled = typeid(x).name();
        what = x.what();
        code = x.code().value();
        extra = x.code().category().name();
    } catch (const std::system_error& x) {
        kind = Kind::SystemError;
        mangled = typeid(x).name();
        what = x.what();
        code = x.code().value();
        extra = x.code().category().name();
    } catch (const std::exception& x) {
        mangled = typeid(x).name();
        what = x.what();
    } catch (...) {
        kind = Kind::NotStd;
        if (const std::type_info* t = abi::__cxa_current_exception_type()) mangled = t->name();
        what = "an exception that is not a std::exception";
    }
    ar(static_cast<std::uint8_t>(kind), mangled, what, extra, code);
}

std::exception_ptr load_exception(InputArchive& ar) {
    std::uint8_t k = 0;
    std::string mangled, what, extra;
    int code = 0;
    ar(k, mangled, what, extra, code);
    switch (static_cast<Kind>(k)) {
        case Kind::BufferTooShort:
            return std::make_exception_ptr(BufferTooShort(extra));
        case Kind::RemoteError:
            return std::make_exception_ptr(RemoteError(extra, what));
        case Kind::FutureError:
            return std::make_exception_ptr(std::future_error(static_cast<std::future_errc>(code)));
        case Kind::IosFailure: {
            const std::error_code ec(code, category_named(extra));
            return std::make_exception_ptr(std::ios_base::failure(strip_suffix(what, ec.message()), ec));
        }
        case Kind::SystemError: {
            const std::error_code ec(code, category_named(extra));
            if (mangled == typeid(std::system_error).name())
                return std::make_exception_ptr(std::system_error(ec, strip_suffix(what, ec.message())));
            break;  // a subclass: registered, or RemoteError below
        }
        case Kind::NotStd:
            return std::make_exception_ptr(
                RemoteError(mangled.empty() ? "unknown" : demangle(mangled.c_str()), what));
        case Kind::Plain:
            break;
        default:
            throw SerializationError("mproc: malformed exception in message");
    }
    ExceptionFactory make = nullptr;
    {
        std::lock_guard lk(registry_mutex());
        auto it = registry().find(mangled);
        if (it != registry().end()) make = it->second;
    }
    if (make) return make(what);
    return std::make_exception_ptr(RemoteError(demangle(mangled.c_str()), what));
}

std::string describe_exception(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return type_name(typeid(x)) + ": " + x.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

}  // namespace mproc::detail
