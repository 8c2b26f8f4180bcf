# sluice_add_plugin(<name> DIR <folder holding plugin.toml> OUTPUT_DIR <dir>
#                   SOURCES <files>... [LIBS <libraries>...] [INSTALL])
# Builds a native plugin as the module library <OUTPUT_DIR>/<name>/lib<x>.so
# next to a copy of its plugin.toml (the layout the plugin catalog searches),
# and with INSTALL installs both to lib/sluice/plugins/<name>/. The library's
# file name (`library = "lib<x>.so"`, default lib<name>.so) and the version
# are read from plugin.toml (one source of truth); the name and version reach
# the code as SLUICE_PLUGIN_NAME and SLUICE_PLUGIN_VERSION. The target is
# sluice_plugin_<name>, linked privately with LIBS; only the entry symbol is
# exported.
set(SLUICE_PLUGIN_EXPORTS_MAP ${CMAKE_CURRENT_LIST_DIR}/plugin-exports.map)

function(sluice_add_plugin name)
  cmake_parse_arguments(P "INSTALL" "DIR;OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  set(manifest ${P_DIR}/plugin.toml)
  file(STRINGS ${manifest} version_line REGEX "^version *= *\"[^\"]*\"")
  string(REGEX REPLACE "^version *= *\"([^\"]*)\".*" "\\1" version "${version_line}")
  if(NOT version)
    message(FATAL_ERROR "${manifest}: no version = \"...\" line")
  endif()
  set(library ${name})
  file(STRINGS ${manifest} library_line REGEX "^library *= *\"lib[^\"]+\\.so\"")
  if(library_line)
    string(REGEX REPLACE "^library *= *\"lib([^\"]+)\\.so\".*" "\\1" library "${library_line}")
  endif()
  set(target sluice_plugin_${name})
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${library}
    LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR}/${name}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${target} PRIVATE sluice_plugin_sdk ${P_LIBS})
  # A missing library fails the link, not dlopen; only the entry symbol is exported.
  target_link_options(${target} PRIVATE -Wl,--no-undefined
    -Wl,--version-script=${SLUICE_PLUGIN_EXPORTS_MAP})
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${SLUICE_PLUGIN_EXPORTS_MAP})
  target_compile_definitions(${target} PRIVATE
    SLUICE_PLUGIN_NAME="${name}" SLUICE_PLUGIN_VERSION="${version}")
  configure_file(${manifest} ${P_OUTPUT_DIR}/${name}/plugin.toml COPYONLY)
  if(P_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION lib/sluice/plugins/${name})
    install(FILES ${manifest} DESTINATION lib/sluice/plugins/${name})
  endif()
endfunction()
