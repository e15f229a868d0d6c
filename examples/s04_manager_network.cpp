// S4, across machines: runs the two programs, s04_manager_server and s04_manager_client, here
// on loopback (on two computers, give the server's host and port to the client instead).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include <mproc/mproc.hpp>

#include "print.hpp"

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    const std::string dir = py::here();
    std::cout << "$ s04_manager_server 127.0.0.1 0 s4-secret" << std::endl;
    FILE* server = popen(("'" + dir + "/s04_manager_server' 127.0.0.1 0 s4-secret").c_str(), "r");
    if (!server) return 1;
    char line[512] = {};
    if (!std::fgets(line, sizeof line, server)) return 1;
    std::cout << line;
    const std::string text = line;
    const std::string address = text.substr(text.rfind(' ') + 1);
    const std::string host = address.substr(0, address.rfind(':'));
    const std::string port = std::to_string(std::stoi(address.substr(address.rfind(':') + 1)));
    std::cout << "$ s04_manager_client " << host << " " << port << " s4-secret --stop" << std::endl;
    const int client = std::system(("'" + dir + "/s04_manager_client' " + host + " " + port + " s4-secret --stop").c_str());
    while (std::fgets(line, sizeof line, server)) std::cout << line;
    const int served = pclose(server);
    return WIFEXITED(client) && WEXITSTATUS(client) == 0 && WIFEXITED(served) && WEXITSTATUS(served) == 0 ? 0 : 1;
}
