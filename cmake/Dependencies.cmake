# Every dependency comes from a Debian package (see scripts/setup); nothing is
# downloaded at build time.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)                        # libboost-graph-dev (header-only part)
find_package(nlohmann_json 3.10 REQUIRED)                # nlohmann-json3-dev
find_package(OpenSSL 3 REQUIRED)                         # libssl-dev (SHA-256 of artifacts)
find_package(SQLite3 3.37 REQUIRED)                      # libsqlite3-dev (the metadata store)
pkg_check_modules(LUAJIT REQUIRED IMPORTED_TARGET luajit) # libluajit2-5.1-dev
find_package(CURL 7.85 REQUIRED)                         # libcurl4-openssl-dev (sluice.http in Lua steps)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib) # libcpp-httplib-dev (compiled library; tests' HTTP server)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus) # libtomlplusplus-dev
find_library(CCTZ_LIBRARY cctz REQUIRED)                 # libcctz-dev
find_path(CCTZ_INCLUDE_DIR cctz/time_zone.h REQUIRED)
add_library(sluice_cctz INTERFACE)
target_link_libraries(sluice_cctz INTERFACE ${CCTZ_LIBRARY})
target_include_directories(sluice_cctz SYSTEM INTERFACE ${CCTZ_INCLUDE_DIR})
# libxgboost-dev (the trainer plugin, its C API). Not through its CMake package:
# Debian's refers to /usr/bin/xgboost, which libxgboost-dev does not install.
find_library(XGBOOST_LIBRARY xgboost REQUIRED)
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h REQUIRED)
add_library(sluice_xgboost INTERFACE)
target_link_libraries(sluice_xgboost INTERFACE ${XGBOOST_LIBRARY})
target_include_directories(sluice_xgboost SYSTEM INTERFACE ${XGBOOST_INCLUDE_DIR})
