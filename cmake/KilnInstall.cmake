# kiln's install rules (included when KILN_INSTALL is ON):
#   <prefix>/include/kiln/...                         the header tree
#   <prefix>/share/kiln/kernels/...                   kernels/, where the source tree has one
#   <prefix>/lib/cmake/kiln/kilnConfig.cmake          find_package(kiln) -> kiln::kiln
#                          /kilnConfigVersion.cmake
#                          /kilnTargets.cmake
# and a build-tree kilnTargets.cmake, so that a project taking kiln with FetchContent or
# add_subdirectory (and KILN_INSTALL=ON) can export its own targets that link kiln::kiln.
include(CMakePackageConfigHelpers)
set(KILN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kiln DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(KILN_XXHASH_FETCHED)
  # No system xxHash: the fetched header goes next to kiln's, on the consumer's include path.
  install(FILES ${KILN_XXHASH_INCLUDE_DIR}/xxhash.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/kernels)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/kernels/ DESTINATION ${CMAKE_INSTALL_DATADIR}/kiln/kernels)
endif()

install(TARGETS kiln EXPORT kilnTargets)
install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${KILN_INSTALL_CMAKEDIR})
export(EXPORT kilnTargets NAMESPACE kiln:: FILE ${PROJECT_BINARY_DIR}/kilnTargets.cmake)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/kilnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kilnConfig.cmake
  INSTALL_DESTINATION ${KILN_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/kilnConfig.cmake ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/KilnEmbed.cmake
  DESTINATION ${KILN_INSTALL_CMAKEDIR})
