// S5: Queue. square_list puts the squares of a list into a queue; the parent takes them out
// until the queue is empty, in order.
//
// Python:
//   def square_list(mylist, q):
//       for num in mylist: q.put(num * num)
//   def print_queue(q):
//       print("Queue elements:")
//       while not q.empty(): print(q.get())
//       print("Queue is now empty!")
//
// mproc goes further: a child that puts a lot and exits can be joined before anyone reads (put()
// stores the data in the queue's shared memory; Python's feeder thread would wait for a reader).
#include <iostream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

void square_list(std::vector<int> mylist, mproc::Queue<int> q) {
    for (int num : mylist) q.put(num * num);
}

void print_queue(mproc::Queue<int> q) {
    std::cout << "Queue elements:" << std::endl;
    while (!q.empty()) std::cout << q.get() << std::endl;
    std::cout << "Queue is now empty!" << std::endl;
}

void put_many(mproc::Queue<std::string> q) {
    for (int i = 0; i < 64; ++i) q.put(std::string(1 << 20, 'x'));  // 64 MiB, nobody reading yet
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::vector<int> mylist{1, 2, 3, 4};
    mproc::Queue<int> q;
    mproc::Process p1(square_list, mylist, q);
    mproc::Process p2(print_queue, q);
    p1.start();
    p1.join();
    p2.start();
    p2.join();

    mproc::Queue<std::string> big;
    mproc::Process producer(put_many, big);
    producer.start();
    producer.join();  // joined before a single get()
    std::cout << "a child put 64 MiB and exited before anyone read; the queue holds " << big.qsize()
              << " messages" << std::endl;
}
