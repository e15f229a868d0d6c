// Functions travel as (module, offset): the round trip gives back the same function.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include <mproc/detail/archive.hpp>
#include <mproc/detail/code_address.hpp>
#include <mproc/errors.hpp>

namespace {
int triple(int x) { return 3 * x; }

TEST(CodeAddress, FunctionInTheExecutableRoundTrips) {
    const auto a = mproc::detail::encode_function(&triple);
    EXPECT_EQ(a.module, "");  // the main executable
    auto* f = mproc::detail::decode_function<int(int)>(a);
    EXPECT_EQ(f, &triple);
    EXPECT_EQ(f(5), 15);
}

TEST(CodeAddress, FunctionInASharedLibraryRoundTrips) {
    double (*cosine)(double) = &::cos;
    const auto a = mproc::detail::encode_function(cosine);
    EXPECT_NE(a.module, "");  // libm
    EXPECT_EQ(mproc::detail::decode_function<double(double)>(a), cosine);
}

TEST(CodeAddress, DataIsNotCode) {
    static int data = 0;
    EXPECT_THROW(mproc::detail::encode_code_address(&data), std::logic_error);
}

TEST(CodeAddress, UnknownModuleIsAnError) {
    mproc::detail::CodeAddress a{"/no/such/library.so", 16};
    EXPECT_THROW(mproc::detail::decode_code_address(a), mproc::SerializationError);
}
// The wire form: what save_function writes, load_function reads back as the same function,
// the module named before the offset (a receiver that lacks the module says which).
TEST(CodeAddress, FunctionThroughAnArchive) {
    std::string bytes;
    {
        mproc::detail::OutputArchive out(bytes);
        mproc::detail::save_function(out, &triple);
        mproc::detail::save_function(out, static_cast<double (*)(double)>(&::cos));
    }
    mproc::detail::InputArchive in(bytes);
    EXPECT_EQ(mproc::detail::load_function<int(int)>(in), &triple);
    EXPECT_EQ(mproc::detail::load_function<double(double)>(in), static_cast<double (*)(double)>(&::cos));
    EXPECT_EQ(in.remaining(), 0u);

    std::string other;
    {
        mproc::detail::OutputArchive out(other);
        out(std::string("/no/such/library.so"), std::uint64_t{16});
    }
    mproc::detail::InputArchive unknown(other);
    EXPECT_THROW(mproc::detail::load_function<int(int)>(unknown), mproc::SerializationError);
    mproc::detail::InputArchive truncated(std::string_view(bytes).substr(0, 5));
    EXPECT_THROW(mproc::detail::load_function<int(int)>(truncated), mproc::SerializationError);
}
}  // namespace
