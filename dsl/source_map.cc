#include "dsl/source_map.h"

#include <algorithm>

namespace sluice::dsl {

SourceMap::SourceMap(std::string_view source) : source_(source) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < source.size(); ++i)
    if (source[i] == '\n') line_starts_.push_back(i + 1);
  block_chars_.reserve(source.size() / kBlock + 1);
  size_t chars = 0;
  for (size_t i = 0; i < source.size(); ++i) {
    if (i % kBlock == 0) block_chars_.push_back(chars);
    if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) ++chars;
  }
  if (source.size() % kBlock == 0) block_chars_.push_back(chars);
}

namespace {

// A UTF-8 continuation byte (10xxxxxx) does not start a character.
bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t utf8_length(uint32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

uint32_t hex_value(std::string_view digits) {
  uint32_t v = 0;
  for (char c : digits) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
  }
  return v;
}

}  // namespace

size_t SourceMap::chars_before(size_t offset) const {
  offset = std::min(offset, source_.size());
  size_t chars = block_chars_[offset / kBlock];
  for (size_t i = offset / kBlock * kBlock; i < offset; ++i)
    if (!continuation(source_[i])) ++chars;
  return chars;
}

// Columns count characters (code points), as TOML++ does, not bytes.
size_t SourceMap::offset_of(SourcePos pos) const {
  if (pos.line == 0 || pos.line > line_starts_.size()) return source_.size();
  const size_t start = line_starts_[pos.line - 1];
  const size_t end = pos.line < line_starts_.size() ? line_starts_[pos.line] - 1 : source_.size();  // its '\n' or EOF
  if (pos.column <= 1) return start;
  // The first byte of character number chars_before(start) + column - 1,
  // or the line's end when the line is shorter.
  const size_t target = chars_before(start) + pos.column - 1;
  if (target >= chars_before(end)) return end;
  // The last block starting with fewer characters than `target` before it.
  size_t block = static_cast<size_t>(std::upper_bound(block_chars_.begin(), block_chars_.end(), target) - block_chars_.begin()) - 1;
  size_t off = std::max(block * kBlock, start);
  size_t chars = chars_before(off);
  for (; off < end; ++off) {
    if (continuation(source_[off])) continue;
    if (chars == target) break;
    ++chars;
  }
  return off;
}

SourcePos SourceMap::position_of(size_t offset) const {
  offset = std::min(offset, source_.size());
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  size_t line = static_cast<size_t>(it - line_starts_.begin());
  size_t column = chars_before(offset) - chars_before(line_starts_[line - 1]) + 1;
  return SourcePos{static_cast<uint32_t>(line), static_cast<uint32_t>(column)};
}

SourcePos SourceMap::in_string(SourcePos literal, size_t decoded_offset) const {
  size_t r = offset_of(literal);
  if (r >= source_.size()) return literal;
  const size_t begin = r;
  const char quote = source_[r];
  if (quote != '"' && quote != '\'') return literal;
  const bool multi = source_.substr(r, 3) == std::string_view(quote == '"' ? "\"\"\"" : "'''");
  r += multi ? 3 : 1;
  if (multi) {
    if (source_.substr(r, 2) == "\r\n") r += 2;
    else if (r < source_.size() && source_[r] == '\n') r += 1;
  }
  const bool basic = quote == '"';
  size_t d = 0;
  if (last_scan_.literal == begin && last_scan_.decoded <= decoded_offset) {
    r = last_scan_.raw;
    d = last_scan_.decoded;
  }
  auto blank = [&](size_t i) {
    return i < source_.size() && (source_[i] == ' ' || source_[i] == '\t' || source_[i] == '\n' || source_[i] == '\r');
  };
  // Stops at the first byte of the character at `decoded_offset`, past any
  // line-ending backslash (which decodes to nothing) in front of it.
  while (r < source_.size()) {
    char c = source_[r];
    if (basic && multi && c == '\\' && blank(r + 1)) {
      // Line-ending backslash: the newline and following whitespace vanish.
      r += 1;
      while (blank(r)) ++r;
      continue;
    }
    if (d >= decoded_offset) break;
    if (basic && c == '\\' && r + 1 < source_.size()) {
      char e = source_[r + 1];
      if (e == 'u' || e == 'U') {
        size_t digits = e == 'u' ? 4 : 8;
        d += utf8_length(hex_value(source_.substr(r + 2, digits)));
        r += 2 + digits;
      } else {
        d += 1;
        r += 2;
      }
      continue;
    }
    // TOML++ turns a CRLF inside a multi-line string into one '\n'.
    if (multi && c == '\r' && r + 1 < source_.size() && source_[r + 1] == '\n') ++r;
    ++d;
    ++r;
  }
  last_scan_ = Scan{begin, r, d};
  return position_of(r);
}

}  // namespace sluice::dsl
