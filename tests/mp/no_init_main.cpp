// A program whose main never calls mproc::init: spawn and forkserver must refuse with a
// std::logic_error that says to add it, and fork must still work. Exit code 0 when all holds.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <mproc/mproc.hpp>

static void nothing() {}

int main() {
    for (const char* method : {"spawn", "forkserver"}) {
        mproc::Process p({.start_method = method}, nothing);
        try {
            p.start();
            std::printf("FAIL: %s started without init\n", method);
            return 1;
        } catch (const std::logic_error& e) {
            if (std::string(e.what()).find("mproc::init(argc, argv)") == std::string::npos) {
                std::printf("FAIL: message does not say to add init: %s\n", e.what());
                return 1;
            }
            std::printf("ok: %s refused: %s\n", method, e.what());
        }
    }
    mproc::Process f({.start_method = "fork"}, nothing);
    f.start();
    f.join();
    if (f.exitcode() != 0) return 1;
    std::printf("ok: fork works without init\n");
    return 0;
}
