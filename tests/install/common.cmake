# What the install checks (cmake -P scripts beside this file) share. Each is given:
#   SOURCE_DIR BINARY_DIR  mproc's source tree and its build (tests/install/CMakeLists.txt)
#   WORK_DIR               its own scratch directory, emptied first and removed when it passes
#   GENERATOR COMPILER LAUNCHER  how mproc itself was built, for the consumers
#   WITH_MPI               whether the mpi component was built

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# Runs a command; stops the check naming the step and showing what the command printed.
# What it printed on stdout is left in MPROC_OUT.
function(mproc_run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE r OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT r EQUAL 0)
    message(FATAL_ERROR "${what} failed (${r}):\n${ARGN}\n${out}\n${err}")
  endif()
  set(MPROC_OUT "${out}" PARENT_SCOPE)
endfunction()

function(mproc_expect_files root)
  foreach(f ${ARGN})
    if(NOT EXISTS ${root}/${f})
      message(FATAL_ERROR "not installed: ${root}/${f}")
    endif()
  endforeach()
endfunction()

# Runs a consumer program and checks what it prints.
function(mproc_run_consumer program expect)
  mproc_run("running ${program}" ${program})
  message(STATUS "${program} said: ${MPROC_OUT}")
  if(NOT MPROC_OUT MATCHES "${expect}")
    message(FATAL_ERROR "${program} did not print '${expect}'")
  endif()
endfunction()

set(MPROC_CONSUMER_SAYS "consumer: child exited 0, spawn child exited 0")
set(MPROC_MPI_CONSUMER_SAYS "mpi consumer: 81, distributed 0")

# Configures, builds and runs the CMake consumer project tests/install/<name> (find_package(mproc)
# from the prefixes in CMAKE_PREFIX_PATH), with mproc's compiler.
function(mproc_check_find_package name prefix expect)
  set(build ${WORK_DIR}/${name})
  mproc_run("configuring ${name}" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/${name} -B ${build}
            -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${COMPILER} -DCMAKE_PREFIX_PATH=${prefix})
  mproc_run("building ${name}" ${CMAKE_COMMAND} --build ${build})
  mproc_run_consumer(${build}/${name} "${expect}")
endfunction()
