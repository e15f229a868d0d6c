// S6: Pipe(). One end sends messages and then "END"; the other prints them until "END".
//
// Python:
//   def sender(conn, msgs):
//       for msg in msgs:
//           conn.send(msg); print("Sent the message: {}".format(msg))
//       conn.close()
//   def receiver(conn):
//       while 1:
//           msg = conn.recv()
//           if msg == "END": break
//           print("Received the message: {}".format(msg))
//
// mproc goes further: one end used by two senders at once never interleaves their messages
// (Python's documentation warns that data "may become corrupted" then).
#include <iostream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

void sender(mproc::Connection conn, std::vector<std::string> msgs) {
    for (const auto& msg : msgs) {
        conn.send(msg);
        std::cout << "Sent the message: " << msg << std::endl;
    }
    conn.close();
}

void receiver(mproc::Connection conn) {
    for (;;) {
        const auto msg = conn.recv<std::string>();
        if (msg == "END") break;
        std::cout << "Received the message: " << msg << std::endl;
    }
}

// Sends `count` messages of up to 256 KiB, each one letter repeated.
void bulk_sender(mproc::Connection conn, char letter, int count) {
    for (int i = 0; i < count; ++i) conn.send_bytes(std::string(1 + (i * 7919) % 262144, letter));
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::vector<std::string> msgs{"hello", "hey", "hru?", "END"};
    auto [parent_conn, child_conn] = mproc::Pipe();
    mproc::Process p1(sender, std::move(parent_conn), msgs);
    mproc::Process p2(receiver, std::move(child_conn));
    p1.start();
    p2.start();
    p1.join();
    p2.join();

    // Two processes sending on the same end at once.
    auto [in, out] = mproc::Pipe();
    mproc::Process a(bulk_sender, out.dup(), 'a', 200);
    mproc::Process b(bulk_sender, out.dup(), 'b', 200);
    out.close();
    a.start();
    b.start();
    int whole = 0, mixed = 0;
    for (int k = 0; k < 400; ++k) {
        const std::string m = in.recv_bytes();
        (m.find_first_not_of(m[0]) == std::string::npos ? whole : mixed)++;
    }
    a.join();
    b.join();
    std::cout << "two senders on one end, 200 messages each: " << whole << " arrived whole, " << mixed
              << " interleaved" << std::endl;
}
