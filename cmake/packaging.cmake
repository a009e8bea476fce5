# packaging.cmake: what `cmake --install` puts where, beyond the two executables, and the
# CPack (DEB) package. Included last by the top-level CMakeLists.txt; docs/packaging.md
# describes the layout and how to build, check and install the .deb.
#
#   <prefix>/bin/sutra, sutra-studio           (top level; cmake/studio.cmake)
#   <datadir>/sutra-studio/{models,datasets,examples}/  data/, where SUTRA_DATADIR points
#   <datadir>/sutra-studio/README.md           data/README.md (what the data is, licences)
#   <datadir>/applications/<app-id>.desktop    \
#   <datadir>/metainfo/<app-id>.metainfo.xml    | only when the studio is built
#   <datadir>/icons/hicolor/{scalable,symbolic}/apps/<app-id>[-symbolic].svg
#   <datadir>/glib-2.0/schemas/<app-id>.gschema.xml   (cmake/studio.cmake)
#   <mandir>/man1/sutra.1.gz, sutra-studio.1.gz
#   <docdir>/copyright, LICENSE, changelog.Debian.gz
#
# Tests (label "packaging"): test-packaging (tests/test-packaging.sh: validators, man pages,
# CLI/man-page sync) and test-install (tests/test-install.sh: DESTDIR install + file list).

set(SUTRA_PKG_DIR ${PROJECT_SOURCE_DIR}/packaging)
# The application id is the studio's (cmake/studio.cmake sets STUDIO_APP_ID); the packaging
# files are named after it.
if(DEFINED STUDIO_APP_ID)
  set(SUTRA_APP_ID ${STUDIO_APP_ID})
else()
  set(SUTRA_APP_ID io.github.sutra.Studio)
endif()
# Must match SUTRA_DATADIR (top-level CMakeLists.txt): the engine, CLI and studio look there.
set(SUTRA_PKG_DATADIR ${CMAKE_INSTALL_DATADIR}/sutra-studio)
set(SUTRA_HAVE_STUDIO OFF)
if(TARGET sutra-studio)
  set(SUTRA_HAVE_STUDIO ON)
endif()

# ---------------------------------------------------------------------------------------------
# Data: the built-in model(s), the sample datasets and example training configs (their
# relative model/data paths resolve against the config file, so they work installed). OPTIONAL so that a tree without them
# still installs; configure warns, and test-install fails, when data/ has them but the
# install does not.
# ---------------------------------------------------------------------------------------------
foreach(sub models datasets examples)
  if(NOT IS_DIRECTORY ${PROJECT_SOURCE_DIR}/data/${sub} AND NOT sub STREQUAL "examples")
    message(WARNING "packaging: data/${sub}/ is missing: the install will have no ${sub}, and "
                    "the studio will not open ready to train")
  endif()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/data/${sub} DESTINATION ${SUTRA_PKG_DATADIR}
          OPTIONAL PATTERN ".*" EXCLUDE)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/data/README.md DESTINATION ${SUTRA_PKG_DATADIR} OPTIONAL)

# ---------------------------------------------------------------------------------------------
# Man pages, gzip-compressed as Debian policy asks (man-db reads them on any distribution).
# ---------------------------------------------------------------------------------------------
set(SUTRA_MAN_PAGES ${SUTRA_PKG_DIR}/sutra.1)
if(SUTRA_HAVE_STUDIO)
  list(APPEND SUTRA_MAN_PAGES ${SUTRA_PKG_DIR}/sutra-studio.1)
endif()
find_program(SUTRA_GZIP gzip)
set(SUTRA_MAN_OUT "")
foreach(page ${SUTRA_MAN_PAGES})
  get_filename_component(name ${page} NAME)
  if(SUTRA_GZIP)
    set(out ${PROJECT_BINARY_DIR}/man/${name}.gz)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND ${SUTRA_GZIP} -9 -n -c ${page} > ${out}
      DEPENDS ${page} VERBATIM)
  else()
    set(out ${page})
  endif()
  list(APPEND SUTRA_MAN_OUT ${out})
endforeach()
add_custom_target(sutra-man-pages ALL DEPENDS ${SUTRA_MAN_OUT})
install(FILES ${SUTRA_MAN_OUT} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# ---------------------------------------------------------------------------------------------
# Desktop integration (only with the studio).
# ---------------------------------------------------------------------------------------------
if(SUTRA_HAVE_STUDIO)
  install(FILES ${SUTRA_PKG_DIR}/${SUTRA_APP_ID}.desktop
          DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
  install(FILES ${SUTRA_PKG_DIR}/${SUTRA_APP_ID}.metainfo.xml
          DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
  install(FILES ${SUTRA_PKG_DIR}/icons/hicolor/scalable/apps/${SUTRA_APP_ID}.svg
          DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps)
  install(FILES ${SUTRA_PKG_DIR}/icons/hicolor/symbolic/apps/${SUTRA_APP_ID}-symbolic.svg
          DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/symbolic/apps)
endif()

# ---------------------------------------------------------------------------------------------
# Licence files, and the Debian changelog (Debian policy wants it in every package's doc dir).
# ---------------------------------------------------------------------------------------------
install(FILES ${SUTRA_PKG_DIR}/copyright ${SUTRA_PKG_DIR}/LICENSE
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
if(SUTRA_GZIP)
  set(out ${PROJECT_BINARY_DIR}/deb/changelog.Debian.gz)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/deb
    COMMAND ${SUTRA_GZIP} -9 -n -c ${SUTRA_PKG_DIR}/deb/changelog > ${out}
    DEPENDS ${SUTRA_PKG_DIR}/deb/changelog VERBATIM)
  add_custom_target(sutra-deb-changelog ALL DEPENDS ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

# ---------------------------------------------------------------------------------------------
# Post-install for a direct `cmake --install` (no DESTDIR, i.e. not a package being staged):
# compile the schemas and refresh the icon cache and desktop database, as GNOME's meson
# post-install does. Package managers do this through their own triggers instead.
# ---------------------------------------------------------------------------------------------
if(SUTRA_HAVE_STUDIO)
  install(CODE "
    if(\"\$ENV{DESTDIR}\" STREQUAL \"\")
      set(_share \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}\")
      find_program(_gcs glib-compile-schemas)
      if(_gcs)
        message(STATUS \"Compiling GSettings schemas in \${_share}/glib-2.0/schemas\")
        execute_process(COMMAND \${_gcs} \${_share}/glib-2.0/schemas)
      endif()
      find_program(_guic gtk4-update-icon-cache NAMES gtk4-update-icon-cache gtk-update-icon-cache)
      if(_guic AND EXISTS \${_share}/icons/hicolor/index.theme)
        execute_process(COMMAND \${_guic} -q -t -f \${_share}/icons/hicolor)
      endif()
      find_program(_udd update-desktop-database)
      if(_udd)
        execute_process(COMMAND \${_udd} -q \${_share}/applications)
      endif()
    endif()")
endif()

# ---------------------------------------------------------------------------------------------
# CPack: one binary .deb (sutra-studio_<version>-1_<arch>.deb) and a source tarball.
#   cmake -B build-deb -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build-deb -j2 &&
#   (cd build-deb && cpack -G DEB)          (packaging/build-deb.sh does this and checks it)
# The binaries look for their data under the configure-time prefix (SUTRA_DATADIR), so the
# package installs to that same prefix; configure with /usr for a Debian package.
# ---------------------------------------------------------------------------------------------
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "packaging: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; configure with "
                 "-DCMAKE_INSTALL_PREFIX=/usr to build a Debian package")
endif()
set(SUTRA_SCHEMA_DIR_FULL ${CMAKE_INSTALL_FULL_DATADIR}/glib-2.0/schemas)
set(SCHEMA_DIR ${SUTRA_SCHEMA_DIR_FULL})
configure_file(${SUTRA_PKG_DIR}/deb/postinst.in ${PROJECT_BINARY_DIR}/deb/postinst @ONLY
               FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                WORLD_READ WORLD_EXECUTE)
configure_file(${SUTRA_PKG_DIR}/deb/postrm.in ${PROJECT_BINARY_DIR}/deb/postrm @ONLY
               FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                WORLD_READ WORLD_EXECUTE)

set(CPACK_PACKAGE_NAME sutra-studio)
set(CPACK_PACKAGE_VENDOR "The Sutra Studio contributors")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "fine-tune and chat with small language models on the CPU")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/sutra/sutra-studio")
# Placeholder maintainer until the project has a public address (docs/packaging.md).
set(CPACK_PACKAGE_CONTACT "Sutra Studio maintainers <maintainers@sutra-studio.invalid>")
set(CPACK_RESOURCE_FILE_LICENSE ${SUTRA_PKG_DIR}/LICENSE)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)

set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
if(SUTRA_HAVE_STUDIO)
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "hicolor-icon-theme")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "xdg-desktop-portal-gtk")
endif()
# The extended description; CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY before it as the
# synopsis, indents each line and turns empty lines into " .".
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"Sutra Studio is a GTK 4 desktop studio and a command line (sutra) for
fine-tuning small language models on an ordinary computer, without a graphics
card and without a network connection.

It reads Hugging Face model folders, trains LoRA, QLoRA or full fine-tunes on
JSONL, JSON, CSV or text datasets with a live loss chart, chats with the
result through the model's chat template, quantizes models, and exports PEFT
adapters, merged models and GGUF files. It downloads models from the Hugging
Face Hub into the cache that transformers uses.

A small built-in model trained by the project and sample datasets are
included, so a first training run starts within a minute.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/deb/postinst
                                       ${PROJECT_BINARY_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

# The .deb installs to the configure-time prefix (where the binaries look for their data); set
# per generator at cpack time so that the source tarball keeps its plain layout.
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/CPackProjectConfig.cmake CONTENT
"if(CPACK_GENERATOR STREQUAL \"DEB\")
  set(CPACK_PACKAGING_INSTALL_PREFIX \"${CMAKE_INSTALL_PREFIX}\")
endif()
" @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_BINARY_DIR}/CPackProjectConfig.cmake)

set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_PACKAGE_FILE_NAME sutra-studio-${PROJECT_VERSION})
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/\\\\.git$" "/build[^/]*/" "/\\\\.cache/" "~$")
include(CPack)

# ---------------------------------------------------------------------------------------------
# Tests of the packaging itself.
# ---------------------------------------------------------------------------------------------
if(SUTRA_BUILD_TESTS)
  add_test(NAME test-packaging
           COMMAND ${PROJECT_SOURCE_DIR}/tests/test-packaging.sh ${PROJECT_SOURCE_DIR}
                   $<TARGET_FILE:sutra-cli> ${SUTRA_APP_ID})
  add_test(NAME test-install
           COMMAND ${PROJECT_SOURCE_DIR}/tests/test-install.sh ${PROJECT_SOURCE_DIR}
                   ${PROJECT_BINARY_DIR} ${CMAKE_INSTALL_PREFIX} ${SUTRA_APP_ID}
                   ${SUTRA_HAVE_STUDIO})
  set_tests_properties(test-packaging test-install PROPERTIES
    LABELS packaging TIMEOUT 300
    ENVIRONMENT "OPENBLAS_CORETYPE=Haswell;OPENBLAS_L2_SIZE=512;OPENBLAS_NUM_THREADS=1")
endif()
