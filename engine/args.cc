#include "engine/args.h"

#include <algorithm>

namespace sluice::engine {

std::string Args::value(const std::string& name, const std::string& fallback) const {
  auto it = values.find(name);
  return (it == values.end() || it->second.empty()) ? fallback : it->second.back();
}

const std::vector<std::string>& Args::all(const std::string& name) const {
  static const std::vector<std::string> empty;
  auto it = values.find(name);
  return it == values.end() ? empty : it->second;
}

namespace {

const OptionSpec* find_long(const std::vector<OptionSpec>& specs, const std::string& name) {
  auto it = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.name == name; });
  return it == specs.end() ? nullptr : &*it;
}

const OptionSpec* find_short(const std::vector<OptionSpec>& specs, char c) {
  auto it = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.short_name == c; });
  return it == specs.end() ? nullptr : &*it;
}

}  // namespace

bool parse_args(const std::vector<OptionSpec>& specs, int argc, char** argv, int start, Args& out, std::string& error) {
  bool options_done = false;
  for (int i = start; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    const OptionSpec* spec = nullptr;
    std::string inline_value;
    bool has_inline = false;
    std::string shown = arg;
    if (arg[1] == '-') {
      std::string name = arg.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        has_inline = true;
        name = name.substr(0, eq);
        shown = "--" + name;
      }
      spec = find_long(specs, name);
    } else {
      spec = find_short(specs, arg[1]);
      shown = arg.substr(0, 2);
      if (arg.size() > 2) {
        inline_value = arg.substr(2);
        has_inline = true;
      }
    }
    if (!spec) {
      error = "unknown option '" + shown + "'";
      return false;
    }
    if (spec->value_name.empty()) {
      if (has_inline) {
        error = "option '" + shown + "' takes no value";
        return false;
      }
      out.flags[spec->name] = true;
      continue;
    }
    std::string value;
    if (has_inline) {
      value = inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      error = "option '" + shown + "' needs a value (" + spec->value_name + ")";
      return false;
    }
    auto& slot = out.values[spec->name];
    if (!spec->repeatable && !slot.empty()) {
      error = "option '" + shown + "' given twice";
      return false;
    }
    slot.push_back(value);
  }
  return true;
}

std::string options_help(const std::vector<OptionSpec>& specs) {
  std::string out;
  for (const OptionSpec& s : specs) {
    std::string left = "  ";
    left += s.short_name ? std::string("-") + s.short_name + ", " : "    ";
    left += "--" + s.name;
    if (!s.value_name.empty()) left += " " + s.value_name;
    if (left.size() < 28) left.resize(28, ' ');
    else left += "  ";
    out += left + s.help + "\n";
  }
  return out;
}

}  // namespace sluice::engine
