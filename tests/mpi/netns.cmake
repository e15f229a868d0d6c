# One MPI job across fake hosts (issue 16 point 6): scripts/mpi_hosts.sh makes two network
# namespaces with their own addresses and hostnames and runs netns_hello over them, one rank per
# host; the program fails unless the two ranks report different processor names and ping-pong
# over TCP. Included from tests/CMakeLists.txt where MPI was found (MPROC_HAS_MPI); uses its
# mproc_timeout. Skipped (exit 77), saying why, without root, iproute2 or namespaces.
if(MPROC_HAS_MPI)
  add_executable(mpi_netns_hello ${CMAKE_CURRENT_LIST_DIR}/netns_hello.cpp)
  target_link_libraries(mpi_netns_hello PRIVATE MPI::MPI_CXX)
  # Open MPI's C++ bindings (mpicxx.h, deprecated) warn under -Wextra; the program uses the C API.
  target_compile_definitions(mpi_netns_hello PRIVATE OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)
  target_compile_options(mpi_netns_hello PRIVATE -Wall -Wextra $<$<BOOL:${MPROC_WERROR}>:-Werror>)
  mproc_timeout(t 60)
  add_test(NAME mpi.netns_hello
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/mpi_hosts.sh run 2 $<TARGET_FILE:mpi_netns_hello> 2)
  # The fake hosts use one bridge and subnet per machine: tests that make them run one at a time
  # (the script's lock would also serialize them, but inside their timeouts).
  # Alone besides, as mpi.scenario.hosts: Open MPI's TCP connect between them is timing-bound.
  set_tests_properties(mpi.netns_hello PROPERTIES TIMEOUT ${t} SKIP_RETURN_CODE 77
                       RESOURCE_LOCK mpi_hosts RUN_SERIAL TRUE LABELS mpi_tests)
endif()
