// Python's own multiprocessing.connection as the other end of mproc's Listener and Client:
// framing and both forms of the authkey handshake, right key, wrong key, no key.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include <mproc/mproc.hpp>

#include "subprocess.hpp"

using namespace std::chrono_literals;
namespace mc = mproc::connection;

namespace {
const std::string kPeer = MPROC_INTEROP_DIR "/python_peer.py";

// mproc Listener <- Python Client.
void serve_python_client(const std::string& mode, const std::optional<std::string>& key) {
    mc::Listener l({"127.0.0.1", 0}, key);
    mproc_test::Subprocess py({"python3", kPeer, mode, "127.0.0.1", std::to_string(l.address().port),
                               key ? *key : "-"});
    mc::Connection c = l.accept(20s);
    EXPECT_EQ(c.recv_bytes(), "hello from python");
    c.send_bytes("hello from mproc");
    const std::string big = c.recv_bytes();
    EXPECT_EQ(big, std::string(300000, 'x'));
    c.send_bytes("echo:" + big);
    EXPECT_EQ(c.recv_bytes(), "END");
    EXPECT_EQ(py.read_line().value_or("<none>"), "hello from mproc");
    EXPECT_EQ(py.wait(), 0);
}

// mproc Client -> Python Listener.
void call_python_listener(const std::string& mode, const std::optional<std::string>& listener_key,
                          const std::optional<std::string>& client_key, bool expect_auth_ok) {
    mproc_test::Subprocess py({"python3", kPeer, mode, listener_key ? *listener_key : "-"});
    const auto port = py.read_line();
    ASSERT_TRUE(port) << "the Python listener did not start";
    const mc::Address addr{"127.0.0.1", std::stoi(*port)};
    if (!expect_auth_ok) {
        EXPECT_THROW(mc::Client(addr, client_key), mproc::AuthenticationError);
        EXPECT_NE(py.rest().find("AuthenticationError"), std::string::npos);
        EXPECT_EQ(py.wait(), 3);
        return;
    }
    mc::Connection c = mc::Client(addr, client_key);
    c.send_bytes("from mproc");
    EXPECT_EQ(c.recv_bytes(), "echo:from mproc");
    const std::string big(1 << 20, 'y');
    c.send_bytes(big);
    EXPECT_EQ(c.recv_bytes(), "echo:" + big);
    c.send_bytes("END");
    EXPECT_EQ(py.wait(), 0);
}

TEST(PythonInterop, PythonClientToMprocListenerRightKey) { serve_python_client("client", "secret"); }
TEST(PythonInterop, PythonClientToMprocListenerWrongKey) {
    // The Python client holds "secret", the listener "other": both sides fail.
    mc::Listener l({"127.0.0.1", 0}, "other");
    mproc_test::Subprocess py({"python3", kPeer, "client", "127.0.0.1", std::to_string(l.address().port), "secret"});
    EXPECT_THROW(l.accept(20s), mproc::AuthenticationError);
    EXPECT_NE(py.rest().find("AuthenticationError"), std::string::npos);
    EXPECT_EQ(py.wait(), 3);
}
TEST(PythonInterop, PythonClientToMprocListenerNoKey) { serve_python_client("client", std::nullopt); }

TEST(PythonInterop, MprocClientToPythonListenerRightKey) { call_python_listener("listener", "secret", "secret", true); }
TEST(PythonInterop, MprocClientToPythonListenerWrongKey) { call_python_listener("listener", "secret", "wrong", false); }
TEST(PythonInterop, MprocClientToPythonListenerNoKey) { call_python_listener("listener", std::nullopt, std::nullopt, true); }

// The 3.12+ "{sha256}" handshake, against an independent Python implementation of it.
TEST(PythonInterop, ModernHandshakeBothWays) {
    serve_python_client("modern_client", "k3y");
    call_python_listener("modern_listener", "k3y", "k3y", true);
}
TEST(PythonInterop, ModernHandshakeWrongKey) { call_python_listener("modern_listener", "k3y", "nope", false); }

}  // namespace
