// S2: Array('i', 4) and Value('d') given to a child, which writes the squares of [1, 2, 3, 4]
// and their sum; the parent sees them.
//
// Python:
//   def square_list(mylist, result, square_sum):
//       for idx, num in enumerate(mylist): result[idx] = num * num
//       square_sum.value = sum(result)
//       print("Result(in process p1): {}".format(result[:]))
//       print("Sum of squares(in process p1): {}".format(square_sum.value))
//   result = multiprocessing.Array('i', 4); square_sum = multiprocessing.Value('d')
//   ...
//   print("Result(in main program): {}".format(result[:]))
//   print("Sum of squares(in main program): {}".format(square_sum.value))
#include <iostream>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

void square_list(std::vector<int> mylist, mproc::Array<int> result, mproc::Value<double> square_sum) {
    for (std::size_t idx = 0; idx < mylist.size(); ++idx) result.set(idx, mylist[idx] * mylist[idx]);
    double sum = 0;
    for (int x : result.to_vector()) sum += x;
    square_sum.set_value(sum);
    std::cout << "Result(in process p1): " << py::repr(result.to_vector()) << std::endl;
    std::cout << "Sum of squares(in process p1): " << py::repr(square_sum.value()) << std::endl;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    std::vector<int> mylist{1, 2, 3, 4};
    mproc::Array<int> result(4);        // Array('i', 4)
    mproc::Value<double> square_sum;    // Value('d')
    mproc::Process p1(square_list, mylist, result, square_sum);
    p1.start();
    p1.join();
    std::cout << "Result(in main program): " << py::repr(result.to_vector()) << std::endl;
    std::cout << "Sum of squares(in main program): " << py::repr(square_sum.value()) << std::endl;
}
