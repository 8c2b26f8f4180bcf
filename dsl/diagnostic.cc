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

// Longer source lines are shown as a window around the caret: a diagnostic
// prints its line, and many diagnostics on one long line (a minified or
// generated file) would otherwise print it once each.
constexpr size_t kShownLine = 160;

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

bool utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The message, then `line` (the diagnostic's source line, when known) with a
// caret under the column.
std::string format_with_line(const Diagnostic& d, const std::string_view* line_or_null) {
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
  if (d.pos.line > 0 && d.pos.column > 0 && line_or_null) {
    std::string_view line = *line_or_null;
    size_t caret = d.pos.column - 1;  // as an index into `line`
    std::string prefix;
    if (line.size() > kShownLine) {
      // A window of kShownLine bytes with the caret a third of the way in,
      // cut on character boundaries.
      size_t from = caret > kShownLine / 3 ? caret - kShownLine / 3 : 0;
      from = std::min(from, line.size());
      while (from > 0 && from < line.size() && utf8_continuation(line[from])) --from;
      size_t to = std::min(line.size(), from + kShownLine);
      while (to < line.size() && utf8_continuation(line[to])) ++to;
      const bool cut_end = to < line.size();
      line = line.substr(from, to - from);
      if (from > 0) {
        prefix = "...";
        caret = caret - from + prefix.size();
      }
      out += prefix;
      out += line;
      if (cut_end) out += "...";
    } else {
      out += line;
    }
    out += '\n';
    // Keep tabs so the caret lines up under the same glyph.
    for (size_t i = 0; i < caret; ++i) {
      size_t in_line = i - std::min(i, prefix.size());
      out += (i >= prefix.size() && in_line < line.size() && line[in_line] == '\t') ? '\t' : ' ';
    }
    out += "^\n";
  }
  return out;
}

}  // namespace

std::string format(const Diagnostic& d, std::string_view source) {
  std::string_view line;
  const bool known = d.pos.line > 0 && d.pos.column > 0 && source_line(source, d.pos.line, line);
  return format_with_line(d, known ? &line : nullptr);
}

std::string Diagnostics::format_all() const {
  // One pass over the source finds every line, instead of one per diagnostic.
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    size_t end = source_.find('\n', start);
    std::string_view line(source_.data() + start, (end == std::string::npos ? source_.size() : end) - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::string out;
  for (const Diagnostic& d : items_) {
    const bool known = d.pos.line > 0 && d.pos.column > 0 && d.pos.line <= lines.size();
    out += format_with_line(d, known ? &lines[d.pos.line - 1] : nullptr);
  }
  return out;
}

}  // namespace sluice::dsl
