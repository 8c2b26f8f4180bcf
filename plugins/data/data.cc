// The built-in `data` plugin: `anonymize` drops, hashes (salted SHA-256) or
// generalises named columns of a CSV, streaming it record by record into a
// declared output that appears whole or not at all.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsl/suggest.h"
#include "plugins/data/csv_stream.h"
#include "plugins/data/generalize.h"
#include "plugins/support/args.h"
#include "plugins/support/files.h"
#include "registry/sha256.h"
#include "sluice/plugin.hpp"

namespace {

using namespace sluice::plugins;
using nlohmann::json;
using sluice::plugin::BadArgs;
using sluice::plugin::Failed;
using sluice::plugin::Host;

enum class Op { Keep, Drop, Hash, Generalize };

struct Column {
  Op op = Op::Keep;
  data::Rule rule;
};

// The columns named in args, each with what to do to it; a column named twice is refused.
std::map<std::string, Column> columns_of(const Args& a) {
  std::map<std::string, Column> out;
  std::map<std::string, std::string> where;
  auto add = [&](const std::string& arg, const std::string& name, Column c) {
    auto [it, fresh] = where.emplace(name, arg);
    if (!fresh) throw BadArgs("column '" + name + "' is named in both '" + it->second + "' and '" + arg + "'");
    out[name] = std::move(c);
  };
  for (const std::string& name : a.string_list("drop")) add("drop", name, Column{Op::Drop, {}});
  for (const std::string& name : a.string_list("hash")) add("hash", name, Column{Op::Hash, {}});
  for (const auto& [name, text] : a.string_table("generalize")) {
    std::string error;
    auto rule = data::parse_rule(text, error);
    if (!rule) throw BadArgs("'generalize." + name + "': " + error);
    add("generalize", name, Column{Op::Generalize, *rule});
  }
  return out;
}

const char* arg_of(Op op) { return op == Op::Drop ? "drop" : op == Op::Hash ? "hash" : "generalize"; }

std::string anonymize(const Host& host, const Args& a) {
  const std::string input = a.string("input");
  const std::string output_name = a.string("output");
  const auto output = host.output(output_name);
  if (!output) throw BadArgs("the step declares no output '" + output_name + "' (outputs = { " + output_name + " = \"FILE\" })");
  const std::map<std::string, Column> named = columns_of(a);
  const std::string salt = a.opt_string("salt").value_or("");
  const bool hashing = std::any_of(named.begin(), named.end(), [](const auto& c) { return c.second.op == Op::Hash; });
  if (hashing && salt.empty())
    throw BadArgs("'hash' needs a 'salt' (salt = \"${secrets.NAME}\"): unsalted hashes of names or emails are reversed by guessing");

  csv::Reader in(local_path_of(input));
  csv::Record header;
  if (!in.next(header)) throw Failed("'" + input + "' is empty: it has no header row");

  // What to do to each column of the file, by position.
  std::vector<const Column*> plan(header.size(), nullptr);
  std::vector<std::string> names;
  for (size_t i = 0; i < header.size(); ++i) {
    names.push_back(header[i].text);
    auto it = named.find(header[i].text);
    if (it == named.end()) continue;
    for (size_t j = 0; j < i; ++j)
      if (plan[j] == &it->second) throw Failed("'" + input + "' has two columns named '" + header[i].text + "'");
    plan[i] = &it->second;
  }
  for (const auto& [name, col] : named)
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string have;
      for (const std::string& n : names) have += (have.empty() ? "" : ", ") + n;
      throw BadArgs("'" + std::string(arg_of(col.op)) + "' names column '" + name + "', which '" + input + "' lacks" +
                    sluice::dsl::did_you_mean(name, names) + " (its columns: " + have + ")");
    }

  PendingFile file(*output);
  csv::Writer out(file, in.crlf());
  if (in.bom()) out.raw("\xEF\xBB\xBF");
  auto keep = [&](const csv::Record& r) {
    csv::Record kept;
    for (size_t i = 0; i < r.size(); ++i)
      if (!plan[i] || plan[i]->op != Op::Drop) kept.push_back(r[i]);
    return kept;
  };
  out.write(keep(header));

  sluice::registry::Sha256 sha;
  csv::Record row;
  int64_t rows = 0;
  while (in.next(row)) {
    if (row.size() != header.size())
      throw Failed("'" + input + "': row " + std::to_string(in.row()) + " has " + std::to_string(row.size()) +
                   " fields, the header has " + std::to_string(header.size()));
    for (size_t i = 0; i < row.size(); ++i) {
      if (!plan[i] || row[i].text.empty()) continue;  // empty stays empty: there is nothing to protect
      if (plan[i]->op == Op::Hash) {
        sha.update(salt.data(), salt.size());
        sha.update(row[i].text.data(), row[i].text.size());
        row[i].text = sha.finish();
      } else if (plan[i]->op == Op::Generalize) {
        std::string error;
        auto v = data::apply(plan[i]->rule, row[i].text, error);
        if (!v)
          throw Failed("'" + input + "': row " + std::to_string(in.row()) + ", column '" + names[i] + "': " + error + " (" +
                       plan[i]->rule.text + ")");
        row[i].text = std::move(*v);
      }
    }
    out.write(keep(row));
    if (++rows % 4096 == 0) host.check_cancelled();
  }
  out.flush();
  file.commit();

  int64_t counts[4] = {0, 0, 0, 0};
  for (const auto& [name, col] : named) ++counts[static_cast<int>(col.op)];
  host.log("anonymized " + std::to_string(rows) + " rows of " + input + " into " + *output);
  return json{{"rows", rows},
              {"dropped", counts[static_cast<int>(Op::Drop)]},
              {"hashed", counts[static_cast<int>(Op::Hash)]},
              {"generalized", counts[static_cast<int>(Op::Generalize)]}}
      .dump();
}

std::string run(Host& host, std::string_view action, std::string_view args_json) {
  const Args a(args_json);
  if (action == "anonymize") return anonymize(host, a);
  throw BadArgs("data has no action '" + std::string(action) + "'");
}

int invoke(const char* action, const char* args, const sluice_host_api* api, void* host, char** values, char** error) {
  return sluice::plugin::invoke(run, action, args, api, host, values, error);
}

const char* const kActions[] = {"anonymize", nullptr};
const sluice_plugin kPlugin = {SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, SLUICE_PLUGIN_NAME,
                               SLUICE_PLUGIN_VERSION,   kActions,                invoke,
                               sluice::plugin::free_string};

}  // namespace

extern "C" SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &kPlugin; }
