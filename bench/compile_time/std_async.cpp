#include <future>
#include <vector>
int square(int x) { return x * x; }
int main() {
    std::vector<std::future<int>> fs;
    for (int x : {1, 2, 3}) fs.push_back(std::async(std::launch::async, square, x));
    int s = 0;
    for (auto& f : fs) s += f.get();
    return s == 14 ? 0 : 1;
}
