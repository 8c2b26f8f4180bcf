#include "dsl/diagnostic.h"

#include <algorithm>

namespace sluice::dsl {

void Diagnostics::error(std::string code, SourcePos pos, std::string message) {
  items_.push_back(Diagnostic{Severity::Error, std::move(code), std::move(message), path_, pos});
}

bool Diagnostics::has_errors() const {
  return std::any_of(items_.begin(), items_.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::Error; });
}

void Diagnostics::sort() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.pos.line != b.pos.line) return a.pos.line < b.pos.line;
    return a.pos.column < b.pos.column;
  });
}

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Note: return "note";
  }
  return "error";
}

namespace {

// The text of 1-based line `line` without its newline, or nullopt-like empty
// view with ok=false when the file is shorter.
bool source_line(std::string_view source, uint32_t line, std::string_view& out) {
  size_t start = 0;
  for (uint32_t l = 1; l < line; ++l) {
    size_t nl = source.find('\n', start);
    if (nl == std::string_view::npos) return false;
    start = nl + 1;
  }
  if (start > source.size()) return false;
  size_t end = source.find('\n', start);
  if (end == std::string_view::npos) end = source.size();
  out = source.substr(start, end - start);
  if (!out.empty() && out.back() == '\r') out.remove_suffix(1);
  return true;
}

}  // namespace

std::string format(const Diagnostic& d, std::string_view source) {
  std::string out = d.path;
  if (d.pos.line > 0) {
    out += ':' + std::to_string(d.pos.line);
    if (d.pos.column > 0) out += ':' + std::to_string(d.pos.column);
  }
  out += ": ";
  out += severity_name(d.severity);
  out += ": ";
  out += d.message;
  out += '\n';
  std::string_view line;
  if (d.pos.line > 0 && d.pos.column > 0 && source_line(source, d.pos.line, line)) {
    out += line;
    out += '\n';
    // Keep tabs so the caret lines up under the same glyph.
    for (uint32_t i = 0; i + 1 < d.pos.column; ++i) out += (i < line.size() && line[i] == '\t') ? '\t' : ' ';
    out += "^\n";
  }
  return out;
}

std::string Diagnostics::format_all() const {
  std::string out;
  for (const Diagnostic& d : items_) out += format(d, source_);
  return out;
}

}  // namespace sluice::dsl
