// src/exit_hooks.hpp: what runs as a process ends (internal; process.cpp).
//
// Python's util._exit_function, and the hooks other subsystems sign up to so that it need not
// know them: hooks are registered once, at static initialization or first use, and run in
// registration order.
#pragma once

namespace mproc::detail {

// Things a child gives back as it ends, after its target and before its exit function (a
// manager's references that a fork child took on).
void add_child_exit_hook(void (*hook)()) noexcept;
void run_child_exit_hooks() noexcept;
// Hooks that run first in exit_function, in the program and in every child, before daemonic
// children are sent SIGTERM and the others joined: pools stop there (an executor finishes its
// work, a Pool is terminated), so no dispatcher replaces a worker the exit is ending.
void add_exit_hook(void (*hook)()) noexcept;

// Terminates daemonic children and joins the others (Python: util._exit_function).
void exit_function() noexcept;
// Runs exit_function at exit (std::atexit), once.
void install_exit_function();

}  // namespace mproc::detail
