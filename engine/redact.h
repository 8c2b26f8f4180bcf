#pragma once
// Secret redaction. Every value of a SLUICE_SECRET_* variable (what
// `${secrets.X}` resolves to) is replaced by "***" in whatever the engine
// records or shows of a step: its log file, values, metric names, error text
// and `-v` lines, so no secret reaches the store or the terminal. Immutable
// after construction; safe to share between threads.
#include <string>
#include <string_view>
#include <vector>

namespace sluice::engine {

class Redactor {
 public:
  Redactor() = default;
  // Empty secrets are ignored. A secret spanning several lines is also
  // redacted line by line (streamed output arrives a line at a time).
  explicit Redactor(const std::vector<std::string>& secrets);
  // The values of every SLUICE_SECRET_* in `env` (an environ-style array).
  static Redactor from_environment(char** env);

  bool empty() const { return patterns_.empty(); }
  // `text` with every occurrence of a secret replaced by "***"; at one place
  // the longest secret that matches wins.
  std::string apply(std::string_view text) const;
  // apply() in place; whether anything was replaced.
  bool apply_in_place(std::string& text) const;
  // Rewrites the file at `path` with every secret replaced, streaming it
  // (constant memory) into a temp file renamed over it, and only when it holds
  // a secret. A missing file is fine. Returns "" or the reason it could not.
  std::string redact_file(const std::string& path) const;

 private:
  // Redacts `buf` from `from`; stops before any position where a secret might
  // start but not end within `buf` unless `final`. Returns where it stopped.
  size_t scan(std::string_view buf, bool final, std::string& out, bool& changed) const;

  std::vector<std::string> patterns_;  // longest first
  size_t longest_ = 0;
};

}  // namespace sluice::engine
