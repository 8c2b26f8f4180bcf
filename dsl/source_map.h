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
  std::string_view source_;
  std::vector<size_t> line_starts_;
};

}  // namespace sluice::dsl
