// The registry of the types a manager's server can make, by type key: filled at static
// initialization by every proxy type the program instantiates (detail::Registered) and by
// sync_servants.cpp, read by the server as it makes objects. Also the one error for a method a
// served type does not have.
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "managers/protocol.hpp"

namespace mproc::managers::detail {

namespace {
std::mutex& types_mutex() {
    static std::mutex m;
    return m;
}
std::map<std::string, Factory>& types() {
    static std::map<std::string, Factory> t;
    return t;
}
}  // namespace

void register_type(const std::string& key, Factory make) {
    std::lock_guard g(types_mutex());
    types().emplace(key, make);
}

Factory find_type(const std::string& key) {
    // Registered here rather than at static initialization: nothing else refers to their
    // object file, which a static link would then leave out.
    static const bool sync_types = (register_sync_types(), true);
    (void)sync_types;
    std::lock_guard g(types_mutex());
    auto it = types().find(key);
    return it == types().end() ? nullptr : it->second;
}

void no_method(std::string_view what, std::string_view method) {
    throw std::invalid_argument("mproc: a managed " + std::string(what) + " has no method '" + std::string(method) + "'");
}

}  // namespace mproc::managers::detail
