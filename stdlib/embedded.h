#pragma once
// The Lua standard library (stdlib/**/*.lua), compiled into the binary at
// build time. Module `a.b` is the file `a/b.lua`: require("sluice.metrics")
// finds stdlib/sluice/metrics.lua. See docs/lua.md, "Lua modules of stdlib/".
#include <string>
#include <string_view>
#include <vector>

namespace sluice::stdlib {

struct EmbeddedFile {
  std::string_view path;    // relative to stdlib/, e.g. "sluice/metrics.lua"
  std::string_view source;  // the file's bytes
};

// Every embedded file, sorted by path.
const std::vector<EmbeddedFile>& embedded_files();

// The file of module `name` ("sluice.metrics" -> "sluice/metrics.lua"), or null.
const EmbeddedFile* find_module(std::string_view name);

// The module names, sorted ("sluice.check", "sluice.metrics", ...).
std::vector<std::string> module_names();

}  // namespace sluice::stdlib
