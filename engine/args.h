#pragma once
// Command-line parsing for sluice's subcommands: each command declares its
// options; parsing fills Args or returns a one-line error for usage text.
#include <map>
#include <string>
#include <vector>

namespace sluice::engine {

struct OptionSpec {
  std::string name;        // long name without dashes, e.g. "format"
  char short_name = 0;     // e.g. 'p', or 0
  std::string value_name;  // "" for a flag, else e.g. "FORMAT"
  std::string help;
  bool repeatable = false;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;  // options with values, in order
  std::map<std::string, bool> flags;

  bool flag(const std::string& name) const { return flags.count(name) > 0; }
  // The last value given for `name`, or `fallback`.
  std::string value(const std::string& name, const std::string& fallback = "") const;
  const std::vector<std::string>& all(const std::string& name) const;
};

// Parses argv[start..argc). "--" ends options. False with `error` set.
bool parse_args(const std::vector<OptionSpec>& specs, int argc, char** argv, int start, Args& out, std::string& error);

// The options block of a command's help text.
std::string options_help(const std::vector<OptionSpec>& specs);

}  // namespace sluice::engine
