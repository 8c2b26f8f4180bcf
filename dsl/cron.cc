#include "dsl/cron.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <vector>

#include <cctz/time_zone.h>

namespace sluice::dsl {

namespace {

// The closed range of values a field accepts as written, and the names it
// takes instead of numbers (nullptr when it takes none). `names[i]` stands for
// value `min_named + i`.
struct FieldSpec {
  const char* name;
  int min;
  int max;
  const char* const* names;
  int name_count;
  int min_named;
  const char* name_range;  // "JAN-DEC", shown in messages
};

const char* const kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

// Day-of-week accepts 0-7 (both 0 and 7 are Sunday).
const FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0, 0, nullptr},
    {"hour", 0, 23, nullptr, 0, 0, nullptr},
    {"day-of-month", 1, 31, nullptr, 0, 0, nullptr},
    {"month", 1, 12, kMonthNames, 12, 1, "JAN-DEC"},
    {"day-of-week", 0, 7, kDayNames, 7, 0, "SUN-SAT"},
};

struct Macro {
  const char* name;
  const char* fields;
};

const Macro kMacros[] = {
    {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

// Days in each month of a leap year: the most a month can have.
const int kMaxDaysInMonth[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

struct Token {
  std::string_view text;
  size_t offset;  // in the whole expression
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::vector<Token> split_fields(std::string_view text) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_blank(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !is_blank(text[i])) ++i;
    if (i > start) out.push_back({text.substr(start, i - start), start});
  }
  return out;
}

std::vector<Token> split_on(Token t, char sep) {
  std::vector<Token> out;
  size_t start = 0;
  for (size_t i = 0; i <= t.text.size(); ++i) {
    if (i == t.text.size() || t.text[i] == sep) {
      out.push_back({t.text.substr(start, i - start), t.offset + start});
      start = i + 1;
    }
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string range_text(const FieldSpec& f) { return std::to_string(f.min) + "-" + std::to_string(f.max); }

// Collects the first error; parsing stops at it.
struct Error {
  std::string& message;
  size_t& offset;
  bool fail(std::string m, size_t at) {
    message = std::move(m);
    offset = at;
    return false;
  }
};

// Digits only; values too long to fit are reported as out of range by the
// caller, so saturate rather than overflow.
int digits_value(std::string_view s) {
  int64_t v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
    if (v > 1'000'000) return 1'000'001;
  }
  return static_cast<int>(v);
}

// A single value: a number within the field's range or, for month and
// day-of-week, a three-letter name.
bool parse_value(Token t, const FieldSpec& f, int& out, Error& err) {
  if (all_digits(t.text)) {
    out = digits_value(t.text);
    if (out < f.min || out > f.max)
      return err.fail(std::string(f.name) + " " + std::string(t.text) + " is out of range " + range_text(f), t.offset);
    return true;
  }
  for (int i = 0; i < f.name_count; ++i) {
    if (iequals(t.text, f.names[i])) {
      out = f.min_named + i;
      return true;
    }
  }
  std::string msg = std::string(f.name) + " '" + std::string(t.text) + "' is not a number";
  if (f.names) {
    msg += std::string(" or ") + (f.names == kMonthNames ? "month" : "day") + " name: expected " + range_text(f) +
           " or " + f.name_range;
  } else {
    msg += ": expected " + range_text(f);
  }
  return err.fail(msg, t.offset);
}

// One list item: `*`, `a`, `a-b`, each optionally followed by `/n`.
bool parse_item(Token item, const FieldSpec& f, uint64_t& bits, Error& err) {
  const std::string malformed = std::string(f.name) + " '" + std::string(item.text) +
                                "' is malformed: expected a value, a-b, */n, a-b/n or a/n within " + range_text(f);
  std::vector<Token> slash = split_on(item, '/');
  if (slash.size() > 2) return err.fail(malformed, item.offset);
  Token base = slash[0];
  if (base.text.empty()) return err.fail(malformed, item.offset);

  // Day-of-week steps run over 0-6; 7 is only another spelling of Sunday.
  const int logical_max = f.max == 7 && f.min == 0 ? 6 : f.max;
  int step = 1;
  bool has_step = slash.size() == 2;
  if (has_step) {
    Token s = slash[1];
    const int max_step = logical_max - f.min;
    const std::string step_range = "1-" + std::to_string(max_step);
    if (s.text.empty()) return err.fail(malformed, item.offset);
    if (!all_digits(s.text))
      return err.fail(std::string(f.name) + " step '" + std::string(s.text) + "' is not a number: expected " +
                          step_range,
                      s.offset);
    step = digits_value(s.text);
    if (step < 1 || step > max_step)
      return err.fail(std::string(f.name) + " step " + std::string(s.text) + " is out of range " + step_range,
                      s.offset);
  }

  int lo = 0;
  int hi = 0;
  if (base.text == "*") {
    lo = f.min;
    hi = logical_max;
  } else {
    std::vector<Token> dash = split_on(base, '-');
    if (dash.size() > 2 || dash[0].text.empty() || (dash.size() == 2 && dash[1].text.empty()) ||
        dash[0].text == "*" || (dash.size() == 2 && dash[1].text == "*"))
      return err.fail(malformed, item.offset);
    if (!parse_value(dash[0], f, lo, err)) return false;
    if (dash.size() == 2) {
      if (!parse_value(dash[1], f, hi, err)) return false;
      if (hi < lo)
        return err.fail(std::string(f.name) + " range " + std::string(base.text) +
                            " is backwards: expected low-high within " + range_text(f),
                        base.offset);
    } else {
      // `a/n` means from a to the end of the field, every n.
      hi = has_step ? std::max(lo, logical_max) : lo;
    }
  }
  for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << (v == 7 && f.max == 7 ? 0 : v);
  return true;
}

bool parse_field(Token field, const FieldSpec& f, uint64_t& bits, bool& restricted, Error& err) {
  restricted = field.text != "*";
  bits = 0;
  for (Token item : split_on(field, ',')) {
    if (item.text.empty())
      return err.fail(std::string(f.name) + " list '" + std::string(field.text) +
                          "' has an empty item: expected values within " + range_text(f) + " separated by commas",
                      item.offset);
    if (!parse_item(item, f, bits, err)) return false;
  }
  return true;
}

template <size_t N>
std::bitset<N> to_bitset(uint64_t bits) {
  return std::bitset<N>(bits);
}

// Whether `name` has the shape of an IANA zone name ("UTC", "Europe/Berlin",
// "America/Argentina/Buenos_Aires", "Etc/GMT+5"). This keeps out the things
// cctz would also open that are not zone names: absolute or relative paths,
// "file:"/"libc:" prefixes, and the tz database's side files.
bool looks_like_zone_name(const std::string& name) {
  if (name.empty() || name.size() > 255) return false;
  size_t start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '/') {
      char c = name[i];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '+')) return false;
      continue;
    }
    if (i == start) return false;  // empty component: leading, trailing or doubled '/'
    start = i + 1;
  }
  const std::string_view first(name.data(), std::min(name.find('/'), name.size()));
  // "posix/" and "right/" are alternate trees of the same zones (the latter
  // counts leap seconds); "localtime" is the machine's setting, not a zone.
  for (std::string_view bad : {"posix", "right", "localtime", "posixrules", "Factory"}) {
    if (first == bad) return false;
  }
  return true;
}

}  // namespace

bool CronExpr::parse(std::string_view text, CronExpr& out, std::string& error, size_t& error_offset) {
  Error err{error, error_offset};
  std::vector<Token> fields = split_fields(text);
  if (fields.empty())
    return err.fail(
        "cron expression is empty: expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily",
        0);

  std::string expanded;
  std::vector<Token> expanded_fields;
  const std::vector<Token>* use = &fields;
  bool from_macro = false;
  if (fields[0].text[0] == '@') {
    Token m = fields[0];
    if (iequals(m.text, "@reboot")) return err.fail("@reboot is not supported: schedules fire at times", m.offset);
    const Macro* found = nullptr;
    for (const Macro& macro : kMacros) {
      if (iequals(m.text, macro.name)) found = &macro;
    }
    if (!found)
      return err.fail("unknown cron macro '" + std::string(m.text) +
                          "': expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually",
                      m.offset);
    if (fields.size() > 1)
      return err.fail("cron macro '" + std::string(m.text) + "' stands alone: unexpected '" +
                          std::string(fields[1].text) + "' after it",
                      fields[1].offset);
    expanded = found->fields;
    expanded_fields = split_fields(expanded);
    for (Token& t : expanded_fields) t.offset = m.offset;  // errors cannot happen, but point at the macro
    use = &expanded_fields;
    from_macro = true;
  } else if (fields.size() != 5) {
    const std::string msg = "cron expression has " + std::to_string(fields.size()) +
                            (fields.size() == 1 ? " field" : " fields") +
                            ", expected 5: minute hour day-of-month month day-of-week";
    if (fields.size() > 5) return err.fail(msg, fields[5].offset);
    const Token& last = fields.back();
    return err.fail(msg, last.offset + last.text.size());
  }

  CronExpr e;
  uint64_t bits[5] = {};
  bool restricted[5] = {};
  for (size_t i = 0; i < 5; ++i) {
    if (!parse_field((*use)[i], kFields[i], bits[i], restricted[i], err)) return false;
  }
  e.minutes = to_bitset<60>(bits[0]);
  e.hours = to_bitset<24>(bits[1]);
  e.days = to_bitset<32>(bits[2]);
  e.months = to_bitset<13>(bits[3]);
  e.weekdays = to_bitset<7>(bits[4]);
  e.days_restricted = restricted[2];
  e.weekdays_restricted = restricted[4];

  // With day-of-week unrestricted, only day-of-month decides; it can name a
  // day that none of the chosen months has (Feb 29 is fine: leap years).
  if (!from_macro && !e.weekdays_restricted) {
    int first_day = 1;
    while (!e.days[first_day]) ++first_day;
    int longest = 0;
    for (int m = 1; m <= 12; ++m) {
      if (e.months[m]) longest = std::max(longest, kMaxDaysInMonth[m]);
    }
    if (first_day > longest) {
      const size_t b = text.find_first_not_of(" \t\n\r\f\v");
      const size_t end = text.find_last_not_of(" \t\n\r\f\v");
      return err.fail("cron expression '" + std::string(text.substr(b, end - b + 1)) +
                          "' can never fire: its months have at most " + std::to_string(longest) + " days",
                      0);
    }
  }

  e.text_ = std::string(text);
  out = std::move(e);
  return true;
}

bool CronExpr::matches_day(int month, int day, int weekday) const {
  if (month < 1 || month > 12 || day < 1 || day > 31 || weekday < 0 || weekday > 6) return false;
  if (!months[static_cast<size_t>(month)]) return false;
  const bool dom = days[static_cast<size_t>(day)];
  const bool dow = weekdays[static_cast<size_t>(weekday)];
  if (days_restricted && weekdays_restricted) return dom || dow;
  return dom && dow;
}

bool CronExpr::matches(int month, int day, int weekday, int hour, int minute) const {
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return false;
  return matches_day(month, day, weekday) && hours[static_cast<size_t>(hour)] &&
         minutes[static_cast<size_t>(minute)];
}

bool is_known_timezone(const std::string& name) {
  if (!looks_like_zone_name(name)) return false;
  cctz::time_zone tz;
  // load_time_zone() returns false when it falls back to UTC.
  return cctz::load_time_zone(name, &tz);
}

}  // namespace sluice::dsl
