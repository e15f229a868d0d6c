// Functions travel as (module, offset): the round trip gives back the same function.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

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
}  // namespace
