# CMake package configuration of libnetrt (installed by `make install`):
#   find_package(netrt REQUIRED)
#   target_link_libraries(prog PRIVATE netrt::netrt)
# gives the runtime's headers and links it with what it needs (jansson, zlib,
# libpng, libjpeg, threads, libm).  The C that netc emits for a target other than generic also
# needs that target's -march (netc emit's first lines say which).
include(CMakeFindDependencyMacro)
find_dependency(ZLIB)
find_dependency(PNG)
find_dependency(JPEG)
find_dependency(Threads)
find_dependency(PkgConfig)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
include("${CMAKE_CURRENT_LIST_DIR}/netrtTargets.cmake")
