# Debian packages of what `cmake --install` installs (`cpack -G DEB` in the build directory;
# docs/packaging.md). One package per install component:
#   libmproc-dev      component mproc: the library, its headers, the CMake config, mproc.pc
#   libmproc-mpi-dev  component mpi, when it is built: mproc::mpi, mproc/mpi.hpp, mproc-mpi.pc
# Two packages rather than one, because Open MPI's development files are a large dependency that
# a user of the core library does not need; the CMake config finds the mpi component only when
# its package is installed.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mproc)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY ${PROJECT_DESCRIPTION})
set(CPACK_PACKAGE_CONTACT "mproc maintainers")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL mproc)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)

# The installed CMake config finds cereal and OpenSSL's libcrypto (mprocConfig.cmake.in), and
# mproc.pc requires libcrypto.pc: their development packages, not only their libraries. A shared
# libmproc needs libssl3 at run time, which libssl-dev depends on.
set(CPACK_DEBIAN_MPROC_PACKAGE_NAME libmproc-dev)
set(CPACK_DEBIAN_MPROC_PACKAGE_DEPENDS "libcereal-dev, libssl-dev")
set(CPACK_COMPONENT_MPROC_DESCRIPTION
    "Python's multiprocessing, threading and concurrent.futures in C++20: library, headers, CMake config, pkg-config file")

if(MPROC_HAS_MPI)
  list(APPEND CPACK_COMPONENTS_ALL mpi)
  set(CPACK_DEBIAN_MPI_PACKAGE_NAME libmproc-mpi-dev)
  # mproc-mpi.pc requires ompi-c, and the CMake config finds MPI: Open MPI's development files.
  set(CPACK_DEBIAN_MPI_PACKAGE_DEPENDS "libmproc-dev (= ${PROJECT_VERSION}), libopenmpi-dev")
  set(CPACK_COMPONENT_MPI_DESCRIPTION
      "mproc's pools and executors over the ranks of an MPI job (Open MPI): mproc::mpi")
endif()

include(CPack)
