// Must NOT compile: a Process argument whose type cannot be serialized. The error must name
// the type (checked by check_compile_fail.cmake).
#include <string>

#include <mproc/mproc.hpp>

struct NotSerializableWidget {
    std::string name;  // not trivially copyable, and no serialize(): nothing can send it
};

void use(NotSerializableWidget) {}

int main() {
    mproc::Process p(use, NotSerializableWidget{"w"});
    p.start();
}
