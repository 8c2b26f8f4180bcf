// CSV without Lua (see csv.h).
#include "engine/csv.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace sluice::engine::csv {

void Reader::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Reader::Result Reader::next(std::vector<std::string>& fields, size_t& count, std::string& error) {
  count = 0;
  int c = get();
  if (first_) {  // a UTF-8 byte order mark is not data
    first_ = false;
    if (c == 0xEF && peek() == 0xBB) {
      get();
      if (peek() == 0xBF) {
        get();
        c = get();
      }
    }
  }
  while (c == '\n' || c == '\r') {
    if (c == '\n') ++line_;
    c = get();
  }
  if (c < 0) return error_.empty() ? Result::End : fail(error);
  record_line_ = line_;
  for (;;) {
    if (count == fields.size()) fields.emplace_back();
    std::string& f = fields[count++];
    f.clear();
    if (c == '"') {
      const int64_t opened = line_;
      for (;;) {
        c = get();
        if (c < 0) {
          if (error_.empty()) error_ = "a quoted field opened on line " + std::to_string(opened) + " is not closed";
          return fail(error);
        }
        if (c == '"') {
          if (peek() != '"') break;
          get();
        } else if (c == '\n') {
          ++line_;
        }
        f += static_cast<char>(c);
      }
      c = get();
      if (c != sep_ && c != '\n' && c != '\r' && c >= 0) {
        error_ = "line " + std::to_string(line_) + ": unexpected text after a closing quote";
        return fail(error);
      }
    } else {
      while (c >= 0 && c != sep_ && c != '\n' && c != '\r') {
        f += static_cast<char>(c);
        c = get();
      }
    }
    if (c == sep_) {
      c = get();
      continue;
    }
    if (c == '\r' && peek() == '\n') c = get();
    if (c == '\n') ++line_;
    if (!error_.empty()) return fail(error);
    return Result::Row;
  }
}

Reader::Result Reader::fail(std::string& error) {
  error = error_;
  return Result::Error;
}

bool Reader::fill() {
  if (fd_ < 0) return false;
  for (;;) {
    const ssize_t n = ::read(fd_, buf_, sizeof buf_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error_ = std::string("read failed: ") + std::strerror(errno);
      return false;
    }
    pos_ = 0;
    len_ = static_cast<size_t>(n);
    return n > 0;
  }
}

int Reader::get() {
  if (pos_ == len_ && !fill()) return -1;
  return static_cast<unsigned char>(buf_[pos_++]);
}

int Reader::peek() {
  if (pos_ == len_ && !fill()) return -1;
  return static_cast<unsigned char>(buf_[pos_]);
}

Number parse_number(std::string_view text, double& out) {
  size_t b = 0, e = text.size();
  while (b < e && (text[b] == ' ' || text[b] == '\t')) ++b;
  while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t')) --e;
  if (b == e) return Number::Empty;
  if (text[b] == '+') ++b;
  const auto [p, ec] = std::from_chars(text.data() + b, text.data() + e, out);
  if (ec == std::errc() && p == text.data() + e) return Number::Ok;
  if (ec == std::errc::result_out_of_range && p == text.data() + e) {
    out = std::strtod(std::string(text.substr(b, e - b)).c_str(), nullptr);
    return Number::Ok;
  }
  return Number::Invalid;
}

std::string format_number(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  std::to_chars_result r;
  if (d == std::floor(d) && std::fabs(d) < 9007199254740992.0)
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(d));
  else
    r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

void append_field(std::string& out, std::string_view text, char sep) {
  if (text.find_first_of(std::string{sep, '"', '\r', '\n'}) == std::string_view::npos) {
    out += text;
    return;
  }
  out += '"';
  for (char ch : text) {
    if (ch == '"') out += '"';
    out += ch;
  }
  out += '"';
}

}  // namespace sluice::engine::csv
