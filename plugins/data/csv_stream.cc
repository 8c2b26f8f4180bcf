#include "plugins/data/csv_stream.h"

#include <cerrno>
#include <cstring>

#include "sluice/plugin.hpp"

namespace sluice::plugins::csv {

using sluice::plugin::Failed;

namespace {
constexpr size_t kBuffer = 1 << 16;
}

Reader::Reader(const std::string& path) : path_(path), buf_(kBuffer) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw Failed("cannot read '" + path + "': " + std::strerror(errno));
}

Reader::~Reader() {
  if (f_) std::fclose(f_);
}

int Reader::peek() {
  if (pos_ == len_) {
    len_ = std::fread(buf_.data(), 1, buf_.size(), f_);
    pos_ = 0;
    if (len_ == 0) {
      if (std::ferror(f_)) throw Failed("cannot read '" + path_ + "': " + std::strerror(errno));
      return EOF;
    }
  }
  return static_cast<unsigned char>(buf_[pos_]);
}

int Reader::get() {
  int c = peek();
  if (c != EOF) ++pos_;
  return c;
}

void Reader::fail(const std::string& what) const { throw Failed(path_ + ": row " + std::to_string(row_) + ": " + what); }

bool Reader::next(Record& out) {
  out.clear();
  if (first_) {
    first_ = false;
    if (peek() == 0xEF) {  // UTF-8 BOM: EF BB BF
      get();
      if (get() != 0xBB || get() != 0xBF) throw Failed(path_ + ": row 1: not UTF-8 text (a broken byte order mark)");
      bom_ = true;
    }
  }
  Field field;
  bool at_start = true;  // at the start of a field
  for (;;) {  // skip blank lines
    int c = peek();
    if (c == EOF) return false;
    if (c == '\n') {
      get();
      continue;
    }
    if (c == '\r') {
      get();
      if (peek() == '\n') {
        get();
        continue;
      }
      field.text = "\r";  // a lone CR is data
      at_start = false;
    }
    break;
  }
  ++row_;
  for (;;) {
    int c = get();
    if (at_start && c == '"') {
      field.quoted = true;
      at_start = false;
      for (;;) {
        int q = get();
        if (q == EOF) fail("a quoted field is not closed before the end of the file");
        if (q == '"') {
          if (peek() == '"') {
            get();
            field.text += '"';
            continue;
          }
          int after = peek();
          if (after != ',' && after != '\n' && after != '\r' && after != EOF)
            fail("a quote inside a quoted field must be doubled (\"\")");
          break;
        }
        field.text += static_cast<char>(q);
      }
      continue;
    }
    at_start = false;
    if (c == ',') {
      out.push_back(std::move(field));
      field = Field{};
      at_start = true;
      continue;
    }
    if (c == EOF || c == '\n' || (c == '\r' && peek() == '\n')) {
      if (c == '\r') get();
      if (row_ == 1) crlf_ = c == '\r';
      out.push_back(std::move(field));
      return true;
    }
    if (c == '"') fail("a quote inside an unquoted field (quote the field and double the quote)");
    field.text += static_cast<char>(c);
  }
}

void Writer::raw(const std::string& bytes) { buf_ += bytes; }

void Writer::write(const Record& r) {
  for (size_t i = 0; i < r.size(); ++i) {
    if (i) buf_ += ',';
    const Field& f = r[i];
    if (f.quoted || f.text.find_first_of(",\"\r\n") != std::string::npos) {
      buf_ += '"';
      for (char c : f.text) {
        if (c == '"') buf_ += '"';
        buf_ += c;
      }
      buf_ += '"';
    } else {
      buf_ += f.text;
    }
  }
  buf_ += eol_;
  if (buf_.size() >= kBuffer) flush();
}

void Writer::flush() {
  out_.write(buf_.data(), buf_.size());
  buf_.clear();
}

}  // namespace sluice::plugins::csv
