// S4: a manager's server process holds a list; one process appends a record to it through a
// proxy, another prints them all.
#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

void insert_record(mproc::managers::ListProxy<std::string> records, std::string record) {
    records.append(record);
    std::cout << "New record added!" << std::endl;
}

void print_records(mproc::managers::ListProxy<std::string> records) {
    for (const auto& r : records.to_vector()) std::cout << "Name: " << r << std::endl;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::managers::SyncManager manager = mproc::Manager();
    auto records = manager.list<std::string>({"Sam: 10", "Adam: 9", "Kevin: 9"});
    mproc::Process p1(insert_record, records, std::string("John: 9"));
    mproc::Process p2(print_records, records);
    p1.start();
    p1.join();
    p2.start();
    p2.join();
}
