#pragma once
// A CSV file with a header, read whole into columns of text (the plugins'
// inputs are batches of training or scoring data, not streams), with typed
// views that fail naming the file, line and column of a bad cell.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/mlkit/action.h"

namespace sluice::mlkit {

class Table {
 public:
  // Reads `path` (shown as `shown` in messages); throws Failed for an
  // unreadable or malformed file or one without a header.
  static Table read(const std::string& path, const std::string& shown);
  static Table read(const Host::File& file) { return read(file.path, file.shown); }

  const std::string& shown() const { return shown_; }
  const std::vector<std::string>& columns() const { return names_; }
  size_t rows() const { return lines_.size(); }
  const std::string& cell(size_t column, size_t row) const { return cells_[column][row]; }
  const std::vector<std::string>& column(size_t c) const { return cells_[c]; }
  int64_t line(size_t row) const { return lines_[row]; }

  std::optional<size_t> find(std::string_view name) const;
  // The index of column `name`, or BadArgs "<arg>: column 'x' is not in <file>
  // (columns: a, b, ...)".
  size_t require(std::string_view arg, const std::string& name) const;

  // True when every non-empty cell of the column is a number.
  bool is_numeric(size_t column) const;
  // The column as numbers, NaN for empty cells; Failed "<file>:<line>:
  // column 'x': 'abc' is not a number" for the first bad cell.
  std::vector<double> numbers(size_t column) const;
  // Like numbers(), but an empty cell fails too ("... is empty").
  std::vector<double> required_numbers(size_t column) const;
  // Scores in [0, 1]; Failed "<file>:<line>: column 's': '1.5' is not a
  // probability in [0, 1]" (or empty, or not a number).
  std::vector<double> probabilities(size_t column) const;
  // 0/1 labels; Failed "<file>:<line>: column 'y': '2' is not 0 or 1".
  std::vector<int> binary_labels(size_t column) const;

 private:
  std::string where(size_t column, size_t row) const;

  std::string shown_;
  std::vector<std::string> names_;
  std::vector<std::vector<std::string>> cells_;  // [column][row]
  std::vector<int64_t> lines_;                   // the line each row starts on
};

// Streams a CSV file: a header, then rows of fields; the file appears whole
// (written to a temp file, then renamed) when finish() succeeds.
class CsvWriter {
 public:
  CsvWriter(std::string path, std::string shown);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;

  void row(const std::vector<std::string_view>& fields);
  void finish();

 private:
  void flush();
  std::string path_, shown_, tmp_;
  int fd_ = -1;
  std::string buf_;
};

}  // namespace sluice::mlkit
