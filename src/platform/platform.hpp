// src/platform/platform.hpp: the one internal interface to the operating system.
//
// Everything above this layer is written against it; nothing outside src/platform/ includes a
// system header or makes a system call (scripts/check_layout.py keeps it so). Conventions:
// every descriptor is created close-on-exec and owned by a UniqueFd; every failure of a system
// call is std::system_error with the real errno, and no type of the public mproc API is thrown
// from here; every blocking wait takes a Deadline and resumes after EINTR with the time that
// remains.
//
// The interface is in sections, one header each, and each section has one implementation file
// per operating system beside it (as reproc pairs each concept with its POSIX file). Porting to
// another system is this checklist: write src/platform/<os>/<section>.cpp for every line, and
// choose the directory in CMakeLists.txt.
//
//   section          header        Linux                   what it holds
//   descriptors      fd.hpp        linux/fd.cpp            UniqueFd, pipes, dup, close-on-exec
//   waiting, bytes   io.hpp        linux/io.cpp            poll with a Deadline, read, write, eventfd
//   sockets          net.hpp       linux/net.cpp           socket pairs, SCM_RIGHTS, Unix and TCP
//   processes        process.hpp   linux/process.cpp       fork, spawn, at_fork, pidfds, reaping
//   signals          signal.hpp    linux/signal.cpp        signal numbers, ignoring, names
//   threads          thread.hpp    linux/thread.cpp        thread ids, liveness, names
//   shared waiting   sync.hpp      linux/sync.cpp          futexes, robust process-shared mutex
//   shared memory    memory.hpp    linux/memory.cpp        memfd, /dev/shm, rings, allocator hints
//   the machine      system.hpp    linux/system.cpp        CPUs, random bytes, terminals, paths
//   loaded code      modules.hpp   linux/modules.cpp       address <-> (module, offset)
//
// Private to the Linux files: linux/posix.hpp (throw_errno, signal sets), linux/cmsg.hpp
// (descriptors attached to socket messages).
#pragma once

#include "platform/fd.hpp"
#include "platform/io.hpp"
#include "platform/memory.hpp"
#include "platform/modules.hpp"
#include "platform/net.hpp"
#include "platform/process.hpp"
#include "platform/signal.hpp"
#include "platform/sync.hpp"
#include "platform/system.hpp"
#include "platform/thread.hpp"
