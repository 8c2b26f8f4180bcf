#pragma once
// CSV without Lua: a streaming RFC 4180 record reader, number parsing and
// formatting for fields, and quoting for a writer. The core of `sluice.csv`
// (engine/lua_csv.cc) and of the plugins that read tables; part of the
// sluice::data library.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::engine::csv {

// Reads records from a file descriptor through a 64 KiB buffer: quoted fields
// with embedded separators, quotes and line breaks; CRLF or LF; a UTF-8 byte
// order mark is skipped; empty lines are skipped. Owns the descriptor.
class Reader {
 public:
  enum class Result { Row, End, Error };

  explicit Reader(char sep = ',') : sep_(sep) {}
  ~Reader() { close(); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  void attach(int fd) { fd_ = fd; }
  void close();

  // The next record into fields[0..count) (the vector only grows, so its
  // strings are reused). On Error, `error` says what and where (a line).
  Result next(std::vector<std::string>& fields, size_t& count, std::string& error);

  // The line the last record started on (1-based).
  int64_t record_line() const { return record_line_; }

 private:
  Result fail(std::string& error);
  bool fill();
  int get();
  int peek();

  int fd_ = -1;
  char sep_;
  bool first_ = true;
  size_t pos_ = 0, len_ = 0;
  int64_t line_ = 1, record_line_ = 1;
  std::string error_;
  char buf_[64 * 1024];
};

// A numeric field: blanks and tabs around it are ignored, a leading '+' is
// allowed; out-of-range values become ±inf or 0 as strtod gives them.
enum class Number { Ok, Empty, Invalid };
Number parse_number(std::string_view field, double& out);

// Integers in ±2^53 without a fraction, others in the shortest form that reads
// back to the same double; "nan", "inf", "-inf".
std::string format_number(double d);

// Appends `text` as one field, quoted when it holds the separator, a quote or
// a line break.
void append_field(std::string& out, std::string_view text, char sep = ',');

}  // namespace sluice::engine::csv
