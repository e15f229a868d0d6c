# The Debian packages (cmake/packaging.cmake): builds them with cpack, checks what each holds and
# depends on (dpkg-deb -I, -c), then unpacks them into a directory (dpkg-deb -x: nothing is
# installed into the machine) and builds and runs a consumer against what they hold: the core
# package alone first, then with the mpi package beside it.
#   VERSION LIBDIR     mproc's version and CMAKE_INSTALL_LIBDIR
#   LIB LIB_MPI        the libraries' file names as a linker looks for them (libmproc.a or .so)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
find_program(DPKG_DEB dpkg-deb REQUIRED)
mproc_run("cpack -G DEB" ${CMAKE_CPACK_COMMAND} -G DEB --config ${BINARY_DIR}/CPackConfig.cmake
          -B ${WORK_DIR}/packages)

# Checks one package: its control fields, and that it holds (and does not hold) these files.
function(mproc_check_deb package)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "DEPENDS" "HOLDS;LACKS")
  file(GLOB deb ${WORK_DIR}/packages/${package}_${VERSION}_*.deb)
  if(NOT deb)
    message(FATAL_ERROR "cpack made no ${package}_${VERSION}_*.deb")
  endif()
  mproc_run("dpkg-deb -I ${deb}" ${DPKG_DEB} -I ${deb})
  message(STATUS "${package}:\n${MPROC_OUT}")
  foreach(field "Package: ${package}" "Version: ${VERSION}" "Depends: ${arg_DEPENDS}")
    string(FIND "${MPROC_OUT}" "${field}\n" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${package}: no '${field}' in its control file")
    endif()
  endforeach()
  mproc_run("dpkg-deb -c ${deb}" ${DPKG_DEB} -c ${deb})
  foreach(f ${arg_HOLDS})
    string(FIND "${MPROC_OUT}" " ./usr/${f}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${package} does not hold /usr/${f}:\n${MPROC_OUT}")
    endif()
  endforeach()
  foreach(f ${arg_LACKS})
    string(FIND "${MPROC_OUT}" " ./usr/${f}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "${package} holds /usr/${f}, which belongs elsewhere")
    endif()
  endforeach()
  mproc_run("dpkg-deb -x ${deb}" ${DPKG_DEB} -x ${deb} ${WORK_DIR}/root)
endfunction()

set(mpi_files include/mproc/mpi.hpp include/mproc/detail/mpi_core.hpp ${LIBDIR}/${LIB_MPI}
              ${LIBDIR}/cmake/mproc/mprocMpiTargets.cmake ${LIBDIR}/pkgconfig/mproc-mpi.pc)
mproc_check_deb(libmproc-dev DEPENDS "libcereal-dev, libssl-dev"
  HOLDS include/mproc/mproc.hpp include/mproc/version.hpp include/mproc/detail/pool_core.hpp ${LIBDIR}/${LIB}
        ${LIBDIR}/cmake/mproc/mprocConfig.cmake ${LIBDIR}/cmake/mproc/mprocConfigVersion.cmake
        ${LIBDIR}/cmake/mproc/mprocTargets.cmake ${LIBDIR}/pkgconfig/mproc.pc
  LACKS ${mpi_files})
set(prefix ${WORK_DIR}/root/usr)
set(ENV{LD_LIBRARY_PATH} "${prefix}/${LIBDIR}:$ENV{LD_LIBRARY_PATH}")
mproc_check_find_package(consumer ${prefix} "${MPROC_CONSUMER_SAYS}")
# Unpacked elsewhere, the package's mproc.pc points into where it lies.
set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  mproc_run("pkg-config --variable=includedir mproc" ${PKG_CONFIG} --variable=includedir mproc)
  string(STRIP "${MPROC_OUT}" includedir)
  if(NOT EXISTS ${includedir}/mproc/mproc.hpp)
    message(FATAL_ERROR "the package's mproc.pc does not point into where it was unpacked: ${includedir}")
  endif()
endif()

if(WITH_MPI)
  mproc_check_deb(libmproc-mpi-dev DEPENDS "libmproc-dev (= ${VERSION}), libopenmpi-dev" HOLDS ${mpi_files}
                  LACKS include/mproc/mproc.hpp)
  mproc_check_find_package(mpi_consumer ${prefix} "${MPROC_MPI_CONSUMER_SAYS}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
