#pragma once
// Streaming RFC 4180 CSV for the data plugin: one record at a time, so memory
// stays constant however long the file is. A field remembers whether it was
// quoted, so a rewritten file quotes what the original quoted (and whatever
// now needs it). Errors throw sluice::plugin::Failed naming the file and row.
#include <cstdio>
#include <string>
#include <vector>

#include "plugins/support/files.h"

namespace sluice::plugins::csv {

struct Field {
  std::string text;
  bool quoted = false;
};
using Record = std::vector<Field>;

// Reads records separated by LF or CRLF; fields separated by ','; quoted
// fields may hold ',', '""' (a quote) and line breaks. Blank lines are skipped.
// A UTF-8 byte order mark before the first record is kept aside (bom()).
class Reader {
 public:
  explicit Reader(const std::string& path);  // throws Failed when it cannot open
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // The next record into `out`; false at the end of the file.
  bool next(Record& out);
  // The number of the record last read (1 = the header).
  size_t row() const { return row_; }
  bool bom() const { return bom_; }
  // Whether the first record ended with CRLF (the file's line ending).
  bool crlf() const { return crlf_; }

 private:
  int get();   // the next byte, or EOF
  int peek();  // the next byte without taking it, or EOF
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  std::FILE* f_ = nullptr;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  size_t row_ = 0;
  bool bom_ = false, crlf_ = false, first_ = true;
};

// Writes records into a PendingFile through a buffer.
class Writer {
 public:
  Writer(PendingFile& out, bool crlf) : out_(out), eol_(crlf ? "\r\n" : "\n") {}
  void raw(const std::string& bytes);  // e.g. a byte order mark
  // A field is quoted when it was quoted or holds ',', '"', CR or LF.
  void write(const Record& r);
  void flush();

 private:
  PendingFile& out_;
  std::string eol_, buf_;
};

}  // namespace sluice::plugins::csv
