// Exceptions cross processes as API.md says: same type and what() for standard, mproc and
// registered types; RemoteError naming the type otherwise.
#include <gtest/gtest.h>

#include <future>
#include <system_error>

#include <mproc/detail/exceptions.hpp>
#include <mproc/errors.hpp>
#include <mproc/serialize.hpp>

namespace {
struct MyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct Unregistered : std::runtime_error {
    using std::runtime_error::runtime_error;
};
}  // namespace

MPROC_REGISTER_EXCEPTION(MyError);

namespace {
std::exception_ptr roundtrip(std::exception_ptr e) {
    std::string bytes;
    {
        mproc::detail::OutputArchive ar(bytes);
        mproc::detail::save_exception(ar, e);
    }
    mproc::detail::InputArchive ar(bytes);
    return mproc::detail::load_exception(ar);
}

template <class E>
void expect_same(const E& original) {
    auto back = roundtrip(std::make_exception_ptr(original));
    try {
        std::rethrow_exception(back);
    } catch (const std::exception& e) {
        EXPECT_EQ(typeid(e), typeid(E)) << mproc::detail::type_name(typeid(e));
        EXPECT_STREQ(e.what(), original.what());
    }
}

TEST(Exceptions, StandardTypesKeepTypeAndMessage) {
    expect_same(std::runtime_error("boom"));
    expect_same(std::logic_error("bad logic"));
    expect_same(std::invalid_argument("bad arg"));
    expect_same(std::out_of_range("index 9"));
    expect_same(std::overflow_error("too big"));
    expect_same(std::bad_alloc());
    expect_same(std::bad_optional_access());
}

TEST(Exceptions, SystemErrorKeepsItsCode) {
    const std::system_error original(ENOENT, std::generic_category(), "open /x");
    auto back = roundtrip(std::make_exception_ptr(original));
    try {
        std::rethrow_exception(back);
    } catch (const std::system_error& e) {
        EXPECT_EQ(typeid(e), typeid(std::system_error));
        EXPECT_EQ(e.code(), original.code());
        EXPECT_STREQ(e.what(), original.what());
    }
}

TEST(Exceptions, MprocTypes) {
    expect_same(mproc::TimeoutError("late"));
    expect_same(mproc::WorkerLostError("worker died with SIGKILL"));
    expect_same(mproc::AuthenticationError("digest mismatch"));
    expect_same(mproc::Empty());
    auto back = roundtrip(std::make_exception_ptr(mproc::BufferTooShort("0123456789")));
    try {
        std::rethrow_exception(back);
    } catch (const mproc::BufferTooShort& e) {
        EXPECT_EQ(e.message(), "0123456789");
    }
}

TEST(Exceptions, RegisteredUserType) { expect_same(MyError("mine")); }

TEST(Exceptions, UnregisteredTypeBecomesRemoteError) {
    auto back = roundtrip(std::make_exception_ptr(Unregistered("hidden")));
    try {
        std::rethrow_exception(back);
        FAIL();
    } catch (const mproc::RemoteError& e) {
        EXPECT_NE(e.type_name().find("Unregistered"), std::string::npos) << e.type_name();
        EXPECT_EQ(e.original_message(), "hidden");
        EXPECT_NE(std::string(e.what()).find("hidden"), std::string::npos);
    }
    // And a RemoteError travels on unchanged.
    try {
        std::rethrow_exception(roundtrip(back));
    } catch (const mproc::RemoteError& e) {
        EXPECT_NE(e.type_name().find("Unregistered"), std::string::npos);
    }
}

TEST(Exceptions, NonStdThrowBecomesRemoteError) {
    auto back = roundtrip(std::make_exception_ptr(42));
    EXPECT_THROW(std::rethrow_exception(back), mproc::RemoteError);
}

}  // namespace
