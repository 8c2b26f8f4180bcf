#pragma once
// Generalisation rules of data.anonymize: a value is replaced by a coarser one
// that still carries signal for training but no longer singles a person out.
//   "bucket:N"  numbers -> the N-wide range holding them ("bucket:10": 23 -> "20-29")
//   "prefix:N"  text -> its first N characters (UTF-8 aware)
//   "year", "month", "day"  ISO dates/times -> "2024", "2024-05", "2024-05-17"
#include <optional>
#include <string>

namespace sluice::plugins::data {

struct Rule {
  enum class Kind { Bucket, Prefix, Year, Month, Day } kind = Kind::Prefix;
  long long n = 0;   // bucket width / prefix length
  std::string text;  // the rule as written, for messages
};

// The rule `text` means; nullopt with `error` when it means none.
std::optional<Rule> parse_rule(const std::string& text, std::string& error);

// `value` generalised by `rule`; nullopt with `error` (e.g. "'abc' is not a
// number") when the value does not fit the rule. Empty values stay empty.
std::optional<std::string> apply(const Rule& rule, const std::string& value, std::string& error);

}  // namespace sluice::plugins::data
