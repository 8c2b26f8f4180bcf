// libFuzzer target for the workflow DSL reader (not part of CI; run it with
// scripts/fuzz-dsl). Feeds arbitrary bytes to dsl::parse_workflow and, when a
// workflow comes back, renders it every way `sluice graph` can (DOT, Mermaid,
// JSON with default params); otherwise formats the diagnostics with their
// source lines and carets. The same bytes go to the plugin.toml reader, and
// every `uses` step of a workflow is checked against a fixed manifest
// (check_with).
// Nothing is printed and no file is written.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "dsl/dag_export.h"
#include "dsl/diagnostic.h"
#include "dsl/params.h"
#include "dsl/parser.h"
#include "dsl/plugin_manifest.h"

namespace dsl = sluice::dsl;

namespace {

// TOML++ 3.3 (Debian's libtomlplusplus-dev) reaches TOML_UNREACHABLE in
// impl::is_non_ascii_horizontal_whitespace() for some non-ASCII code points
// where the parser looks for whitespace, e.g. `x = é`: undefined behaviour
// upstream (marzer/tomlplusplus#190, #295; fixed by #305, after 3.4). It is
// not sluice's, and UBSan would stop every run on it within seconds, so
// inputs holding such a code point are skipped. This mirrors that function:
// true exactly when it would reach its unreachable branch.
bool hits_toml_unicode_ub(char32_t c) {
  if (c < 0xA0 || c > 0xFEFF) return false;
  const uint64_t block = (static_cast<uint64_t>(c) - 0xA0) / 0x3FA;
  if ((1ull << block) & 0x7FFFFFFFFFFFF75Eull) return false;
  if (c == 0xA0 || c == 0x3000 || c == 0xFEFF) return false;
  return block != 5 && block != 7;
}

bool has_toml_unicode_ub(const uint8_t* data, size_t size) {
  for (size_t i = 0; i < size;) {
    const uint8_t b = data[i];
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    if (len == 1 || i + len > size) {
      ++i;
      continue;
    }
    char32_t c = b & (0xFF >> (len + 1));
    for (size_t k = 1; k < len; ++k) c = (c << 6) | (data[i + k] & 0x3F);
    if (hits_toml_unicode_ub(c)) return true;
    i += len;
  }
  return false;
}

// What `with` of every fuzzed `uses` step is checked against.
const char kFixedManifest[] = R"(name = "storage"
version = "1.0.0"
kind = "lua"
[actions.fetch.params]
url = { type = "string", required = true }
sha256 = { type = "string" }
retries = { type = "integer", default = 3 }
timeout = { type = "float", default = 30.0 }
headers = { type = "table" }
mirrors = { type = "array", default = [] }
verify = { type = "boolean", default = true }
extra = { type = "any" }
[actions.put]
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (has_toml_unicode_ub(data, size)) return -1;  // -1: not added to the corpus
  std::string source(reinterpret_cast<const char*>(data), size);
  dsl::Diagnostics mdiags;
  std::optional<dsl::PluginManifest> manifest = dsl::parse_plugin_manifest("plugin.toml", "/plugins/fuzz", source, mdiags);
  size_t sink = mdiags.format_all().size() + (manifest ? manifest->actions.size() : 0);
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(std::move(source), "fuzz.toml", diags);
  if (wf) {
    sink += dsl::to_dot(*wf).size();
    sink += dsl::to_mermaid(*wf).size();
    sink += dsl::to_json(*wf, dsl::default_params(*wf)).size();
    static const dsl::PluginManifest fixed = [] {
      dsl::Diagnostics d;
      return *dsl::parse_plugin_manifest("plugin.toml", "/plugins/storage", kFixedManifest, d);
    }();
    dsl::Diagnostics checked;
    for (const dsl::Step& step : wf->steps)
      if (step.kind == dsl::ActionKind::Uses) dsl::check_with(step, fixed, checked);
    sink += checked.format_all().size();
    // A workflow comes back only without errors; warnings/notes may remain.
    sink += diags.format_all().size();
  } else {
    sink += diags.format_all().size();
  }
  // Keep the results observably used so nothing is optimised away.
  volatile size_t keep = sink;
  (void)keep;
  return 0;
}
