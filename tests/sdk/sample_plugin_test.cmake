# The SDK as a plugin author meets it (run with cmake -P by ctest):
#   1. cmake --install the sluice build tree into a temp prefix;
#   2. the installed files are where the docs say;
#   3. samples/native-plugin configures and builds against that prefix only
#      (find_package(SluicePluginSDK)), with -Wall -Wextra -pedantic -Werror;
#   4. the same source compiles with `pkg-config --cflags sluice-plugin-sdk`;
#   5. the built plugin loads through sluice's loader and its action runs in
#      a worker that is the INSTALLED sluice binary.
# Variables: SOURCE_DIR, BUILD_DIR, WORK, INVOKE (plugin_invoke), GENERATOR.
foreach(v SOURCE_DIR BUILD_DIR WORK INVOKE GENERATOR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "pass -D${v}=...")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

foreach(f include/sluice/plugin.h include/sluice/plugin.hpp
          share/cmake/SluicePluginSDK/SluicePluginSDKConfig.cmake
          share/cmake/SluicePluginSDK/SluicePluginSDKConfigVersion.cmake
          share/cmake/SluicePluginSDK/SluicePluginSDKTargets.cmake
          share/pkgconfig/sluice-plugin-sdk.pc bin/sluice
          lib/sluice/plugins/storage/plugin.toml lib/sluice/plugins/storage/libstorage.so
          lib/sluice/plugins/deploy/plugin.toml lib/sluice/plugins/deploy/libdeploy.so
          lib/sluice/plugins/notify/plugin.toml lib/sluice/plugins/notify/libnotify.so)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()

# 3. CMake package, against the prefix alone.
set(plugin_dir ${WORK}/plugins/wordcount)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/samples/native-plugin -B ${plugin_dir} -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_C_FLAGS=-Werror")
run(${CMAKE_COMMAND} --build ${plugin_dir})
if(NOT EXISTS ${plugin_dir}/libwordcount.so OR NOT EXISTS ${plugin_dir}/plugin.toml)
  message(FATAL_ERROR "the sample's build folder is not a plugin folder")
endif()

# 4. pkg-config, also against the prefix alone.
set(ENV{PKG_CONFIG_PATH} ${prefix}/share/pkgconfig)
set(ENV{PKG_CONFIG_LIBDIR} ${prefix}/share/pkgconfig)
run(pkg-config --cflags sluice-plugin-sdk)
string(STRIP "${run_output}" cflags)
string(REGEX REPLACE "^-I" "" include_dir "${cflags}")
file(REAL_PATH "${include_dir}" include_dir)
if(NOT cflags MATCHES "^-I[^ ]+$" OR NOT include_dir STREQUAL "${prefix}/include")
  message(FATAL_ERROR "pkg-config --cflags sluice-plugin-sdk gave '${cflags}', not -I${prefix}/include")
endif()
run(cc -std=c11 -Wall -Wextra -pedantic -Werror -shared -fPIC ${cflags}
    ${SOURCE_DIR}/samples/native-plugin/wordcount.c -o ${WORK}/libwordcount-pc.so)

# 5. Load it and run `count` in a worker that is the installed sluice.
file(WRITE ${WORK}/text.txt "the quick brown fox\njumps over\nthe lazy dog\n")
file(MAKE_DIRECTORY ${WORK}/work)
run(${INVOKE} ${prefix}/bin/sluice ${plugin_dir} count "{}" ${WORK}/work
    in:text=${WORK}/text.txt out:report=${WORK}/work/report.txt)
set(want "ok
value bytes=44
value lines=3
value words=9
metric words=9
log counted 9 words
")
if(NOT run_output STREQUAL want)
  message(FATAL_ERROR "plugin_invoke printed\n${run_output}\nwanted\n${want}")
endif()
file(READ ${WORK}/work/report.txt report)
if(NOT report STREQUAL "3 9 44\n")
  message(FATAL_ERROR "report.txt holds '${report}'")
endif()
message(STATUS "the installed SDK builds, loads and runs the sample plugin")
