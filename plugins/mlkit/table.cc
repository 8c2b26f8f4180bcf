#include "plugins/mlkit/table.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/csv.h"
#include "plugins/mlkit/action.h"

namespace sluice::mlkit {

namespace csv = engine::csv;

Table Table::read(const std::string& path, const std::string& shown) {
  Table t;
  t.shown_ = shown;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Failed("cannot read " + shown + ": " + std::strerror(errno));
  csv::Reader reader;
  reader.attach(fd);
  std::vector<std::string> fields;
  size_t count = 0;
  std::string error;
  auto r = reader.next(fields, count, error);
  if (r == csv::Reader::Result::Error) throw Failed(shown + ": " + error);
  if (r == csv::Reader::Result::End) throw Failed(shown + " is empty: a header line is needed");
  t.names_.assign(fields.begin(), fields.begin() + static_cast<std::ptrdiff_t>(count));
  for (size_t i = 0; i < t.names_.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (t.names_[i] == t.names_[j]) throw Failed(shown + ": column '" + t.names_[i] + "' appears twice in the header");
  t.cells_.resize(t.names_.size());
  while ((r = reader.next(fields, count, error)) == csv::Reader::Result::Row) {
    if (count != t.names_.size())
      throw Failed(shown + ":" + std::to_string(reader.record_line()) + ": the row has " + std::to_string(count) +
                   " fields, the header has " + std::to_string(t.names_.size()));
    for (size_t i = 0; i < count; ++i) t.cells_[i].push_back(std::move(fields[i]));
    t.lines_.push_back(reader.record_line());
  }
  if (r == csv::Reader::Result::Error) throw Failed(shown + ": " + error);
  return t;
}

std::optional<size_t> Table::find(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return i;
  return std::nullopt;
}

size_t Table::require(std::string_view arg, const std::string& name) const {
  if (auto i = find(name)) return *i;
  std::string list;
  for (const std::string& n : names_) list += (list.empty() ? "" : ", ") + n;
  throw BadArgs(std::string(arg) + ": column '" + name + "' is not in " + shown_ + " (columns: " + list + ")");
}

std::string Table::where(size_t column, size_t row) const {
  return shown_ + ":" + std::to_string(lines_[row]) + ": column '" + names_[column] + "'";
}

bool Table::is_numeric(size_t column) const {
  double d = 0;
  for (const std::string& s : cells_[column])
    if (csv::parse_number(s, d) == csv::Number::Invalid) return false;
  return true;
}

std::vector<double> Table::numbers(size_t column) const {
  std::vector<double> out(rows());
  for (size_t r = 0; r < rows(); ++r) {
    switch (csv::parse_number(cells_[column][r], out[r])) {
      case csv::Number::Ok:
        break;
      case csv::Number::Empty:
        out[r] = std::numeric_limits<double>::quiet_NaN();
        break;
      case csv::Number::Invalid:
        throw Failed(where(column, r) + ": '" + cells_[column][r] + "' is not a number");
    }
  }
  return out;
}

std::vector<double> Table::required_numbers(size_t column) const {
  std::vector<double> out = numbers(column);
  for (size_t r = 0; r < out.size(); ++r)
    if (std::isnan(out[r])) throw Failed(where(column, r) + " is empty");
  return out;
}

std::vector<double> Table::probabilities(size_t column) const {
  std::vector<double> out = required_numbers(column);
  for (size_t r = 0; r < out.size(); ++r)
    if (!(out[r] >= 0 && out[r] <= 1)) throw Failed(where(column, r) + ": '" + cells_[column][r] + "' is not a probability in [0, 1]");
  return out;
}

std::vector<int> Table::binary_labels(size_t column) const {
  std::vector<int> out(rows());
  for (size_t r = 0; r < rows(); ++r) {
    double d = 0;
    const csv::Number n = csv::parse_number(cells_[column][r], d);
    if (n == csv::Number::Empty) throw Failed(where(column, r) + " is empty");
    if (n != csv::Number::Ok || (d != 0 && d != 1)) throw Failed(where(column, r) + ": '" + cells_[column][r] + "' is not 0 or 1");
    out[r] = d == 1;
  }
  return out;
}

CsvWriter::CsvWriter(std::string path, std::string shown) : path_(std::move(path)), shown_(std::move(shown)) {
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Failed("cannot write " + shown_ + ": " + std::strerror(errno));
}

CsvWriter::~CsvWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void CsvWriter::row(const std::vector<std::string_view>& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) buf_ += ',';
    csv::append_field(buf_, fields[i]);
  }
  buf_ += '\n';
  if (buf_.size() >= (1u << 16)) flush();
}

void CsvWriter::flush() {
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Failed("cannot write " + shown_ + ": " + std::strerror(n < 0 ? errno : EIO));
    done += static_cast<size_t>(n);
  }
  buf_.clear();
}

void CsvWriter::finish() {
  flush();
  int err = ::fsync(fd_) != 0 ? errno : 0;
  if (::close(fd_) != 0 && !err) err = errno;
  fd_ = -1;
  if (err) {
    ::unlink(tmp_.c_str());
    throw Failed("cannot write " + shown_ + ": " + std::strerror(err));
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    err = errno;
    ::unlink(tmp_.c_str());
    throw Failed("cannot write " + shown_ + ": " + std::strerror(err));
  }
}

}  // namespace sluice::mlkit
