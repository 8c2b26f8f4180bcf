#pragma once
// Errors are values with positions: one Diagnostic type for TOML, DSL,
// plugin-manifest and Lua errors, printed as `path:line:col: error: message`
// followed by the source line and a caret under the column.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::dsl {

// 1-based line and column; 0 means "unknown" (the diagnostic then has no caret).
struct SourcePos {
  uint32_t line = 0;
  uint32_t column = 0;
  friend bool operator==(const SourcePos&, const SourcePos&) = default;
};

enum class Severity { Error, Warning, Note };

struct Diagnostic {
  Severity severity = Severity::Error;
  std::string code;     // stable machine-readable class, e.g. "unknown-key"
  std::string message;  // one line, no trailing period, no position
  std::string path;     // the file as the user named it
  SourcePos pos;
};

// A batch of diagnostics collected while reading one file. All errors of a
// file are reported, not only the first.
class Diagnostics {
 public:
  void error(std::string code, SourcePos pos, std::string message);
  void add(Diagnostic d) { items_.push_back(std::move(d)); }
  void set_path(std::string path) { path_ = std::move(path); }
  const std::string& path() const { return path_; }
  bool has_errors() const;
  const std::vector<Diagnostic>& items() const { return items_; }
  // Orders by position (stable), so output follows the file top to bottom.
  void sort();
  // The file's text, kept for printing source lines under messages.
  void set_source(std::string source) { source_ = std::move(source); }
  // Every diagnostic formatted (see format() below), in order.
  std::string format_all() const;

 private:
  std::string path_;
  std::string source_;
  std::vector<Diagnostic> items_;
};

const char* severity_name(Severity s);

// `path:line:col: error: message`, then the source line and a caret when the
// position and the source are known. Ends with a newline.
std::string format(const Diagnostic& d, std::string_view source);

}  // namespace sluice::dsl
