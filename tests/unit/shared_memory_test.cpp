// Named shared memory within one process: Python's semantics and errors.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include <mproc/mproc.hpp>

#include "leak_check.hpp"

namespace sm = mproc::shared_memory;

namespace {

TEST(SharedMemory, CreateAttachCloseUnlink) {
    sm::SharedMemory a({.create = true, .size = 4096});
    EXPECT_EQ(a.size(), 4096u);
    EXPECT_EQ(a.name().find('/'), std::string::npos);  // as Python: no leading slash
    EXPECT_EQ(a.name().rfind(mproc_test::shm_prefix(), 0), 0u);  // MPROC_SHM_NAME_PREFIX, set by the test main
    std::memcpy(a.buf().data(), "hello", 5);
    {
        sm::SharedMemory b({.name = a.name()});
        EXPECT_EQ(b.size(), 4096u);
        EXPECT_EQ(std::memcmp(b.buf().data(), "hello", 5), 0);
        b.buf()[0] = std::byte{'j'};
    }
    EXPECT_EQ(std::memcmp(a.buf().data(), "jello", 5), 0);
    const std::string name = a.name();
    a.unlink();
    EXPECT_EQ(std::memcmp(a.buf().data(), "jello", 5), 0);  // the mapping outlives the name
    a.close();
    EXPECT_THROW(a.buf(), std::logic_error);
    try {
        sm::SharedMemory gone({.name = name});
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
    }
}

// Issue 14, 2.15: a name with an embedded NUL was cut short there and attached to another
// segment (Python: ValueError: embedded null character).
TEST(SharedMemory, ANameWithANulIsRefused) {
    sm::SharedMemory a({.create = true, .size = 4096});
    const std::string cut = a.name() + std::string(1, '\0') + "tail";
    EXPECT_THROW(sm::SharedMemory({.name = cut}), std::invalid_argument);
    EXPECT_THROW(sm::SharedMemory({.name = cut, .create = true, .size = 4096}), std::invalid_argument);
    a.close();
    a.unlink();
}

TEST(SharedMemory, DefaultNamesAreLikePythons) {
    const std::string saved = getenv("MPROC_SHM_NAME_PREFIX");
    unsetenv("MPROC_SHM_NAME_PREFIX");
    sm::SharedMemory a({.create = true, .size = 64});
    setenv("MPROC_SHM_NAME_PREFIX", saved.c_str(), 1);
    EXPECT_EQ(a.name().rfind("mproc_psm_", 0), 0u) << a.name();
    EXPECT_EQ(a.name().size(), std::string("mproc_psm_").size() + 16);
    a.unlink();
}

TEST(SharedMemory, BadInput) {
    EXPECT_THROW(sm::SharedMemory({.create = true, .size = 0}), std::invalid_argument);
    EXPECT_THROW(sm::SharedMemory(sm::SharedMemoryOptions{}), std::invalid_argument);  // no name, no create
    const std::string name = mproc_test::shm_prefix() + "named";  // counted by the leak check
    sm::SharedMemory a({.name = name, .create = true, .size = 100});
    try {
        sm::SharedMemory again({.name = name, .create = true, .size = 100});
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EEXIST);
    }
    a.unlink();
    EXPECT_THROW(a.unlink(), std::system_error);  // already gone
}

TEST(ShareableList, TypedFixedLength) {
    sm::ShareableList<int> l(std::vector<int>{3, 1, 4, 1, 5});
    EXPECT_EQ(l.size(), 5u);
    EXPECT_EQ(l.get(2), 4);
    l.set(2, 9);
    EXPECT_EQ(l.count(1), 2u);
    EXPECT_EQ(l.index(5), 4u);
    EXPECT_THROW(l.index(42), std::invalid_argument);
    EXPECT_THROW(l.get(5), std::out_of_range);
    sm::ShareableList<int> same(l.shm().name());
    EXPECT_EQ(same.to_vector(), (std::vector<int>{3, 1, 9, 1, 5}));
    EXPECT_THROW(sm::ShareableList<double>(l.shm().name()), std::invalid_argument);  // not of double
    l.shm().unlink();
}

}  // namespace
