// Named shared memory across processes, under every start method.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include <mproc/mproc.hpp>

namespace sm = mproc::shared_memory;

namespace {

void write_through_handle(sm::SharedMemory shm) { std::memcpy(shm.buf().data(), "from a child", 12); }

void write_by_name(std::string name) {
    sm::SharedMemory shm({.name = name});
    std::memcpy(shm.buf().data(), "by name", 7);
}

void double_all(sm::ShareableList<long> l) {
    for (std::size_t i = 0; i < l.size(); ++i) l.set(i, l.get(i) * 2);
}

class ShmMp : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(ShmMp, HandleGivenToAChild) {
    sm::SharedMemory shm({.create = true, .size = 64});
    sm::SharedMemory reader({.name = shm.name()});  // the original moves into the process
    mproc::Process p(opts(), write_through_handle, std::move(shm));
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(std::memcmp(reader.buf().data(), "from a child", 12), 0);
    reader.unlink();
}

TEST_P(ShmMp, ChildAttachesByName) {
    sm::SharedMemory shm({.create = true, .size = 64});
    mproc::Process p(opts(), write_by_name, shm.name());
    p.start();
    p.join();
    EXPECT_EQ(std::memcmp(shm.buf().data(), "by name", 7), 0);
    shm.unlink();
}

TEST_P(ShmMp, ShareableListGivenToAChild) {
    sm::ShareableList<long> l(std::vector<long>{1, 2, 3});
    const std::string name = l.shm().name();
    mproc::Process p(opts(), double_all, sm::ShareableList<long>(name));
    p.start();
    p.join();
    EXPECT_EQ(l.to_vector(), (std::vector<long>{2, 4, 6}));
    l.shm().unlink();
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ShmMp, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
