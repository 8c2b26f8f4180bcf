#pragma once
// Positions in a workflow file's text (internal to dsl/): line starts, and the
// position of a byte inside a TOML string literal's decoded value.
#include <cstdint>
#include <string_view>
#include <vector>

#include "dsl/diagnostic.h"

namespace sluice::dsl {

class SourceMap {
 public:
  explicit SourceMap(std::string_view source);

  size_t offset_of(SourcePos pos) const;   // byte offset of a 1-based line/column
  SourcePos position_of(size_t offset) const;

  // `literal` is where a TOML string literal starts (its opening quote).
  // Returns the file position of byte `decoded_offset` of the string's value,
  // accounting for the delimiter, a trimmed first newline and escapes.
  SourcePos in_string(SourcePos literal, size_t decoded_offset) const;

 private:
  // Characters (code points) before byte `offset`: columns count characters.
  size_t chars_before(size_t offset) const;

  std::string_view source_;
  std::vector<size_t> line_starts_;
  // chars_before() at every kBlock-th byte, so a column costs at most one
  // block's scan however long its line is.
  static constexpr size_t kBlock = 64;
  std::vector<size_t> block_chars_;
  // in_string() is asked about increasing offsets of one literal (each
  // reference of a template, in order); it resumes from its last answer
  // instead of rescanning the string, which made a string with many
  // references quadratic. A SourceMap is not for concurrent use.
  struct Scan {
    size_t literal = SIZE_MAX;  // byte offset of the literal's opening quote
    size_t raw = 0;             // where the last scan stopped...
    size_t decoded = 0;         // ...and the decoded offset there
  };
  mutable Scan last_scan_;
};

}  // namespace sluice::dsl
