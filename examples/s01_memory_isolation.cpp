// S1: each process has its own memory. A child appends squares to a global list; the parent's
// list is unchanged afterwards.
//
// Python:
//   result = []
//   def square_list(mylist):
//       global result
//       for num in mylist: result.append(num * num)
//       print("Result(in process p1): {}".format(result))
//   p1 = multiprocessing.Process(target=square_list, args=(mylist,)); p1.start(); p1.join()
//   print("Result(in main program): {}".format(result))
#include <iostream>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

std::vector<int> result;  // one per process: the child changes its own copy

void square_list(std::vector<int> mylist) {
    for (int num : mylist) result.push_back(num * num);
    std::cout << "Result(in process p1): " << py::repr(result) << std::endl;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::vector<int> mylist{1, 2, 3, 4};
    mproc::Process p1(square_list, mylist);
    p1.start();
    p1.join();
    std::cout << "Result(in main program): " << py::repr(result) << std::endl;
}
