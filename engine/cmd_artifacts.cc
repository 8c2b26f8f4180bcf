// `sluice artifacts ls [RUN] | show DIGEST | cat DIGEST [PATH] | verify`.
#include <cstdio>
#include <algorithm>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "engine/cli.h"
#include "engine/cli_format.h"
#include "engine/exit_status.h"
#include "engine/state_store.h"
#include "registry/artifact_store.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;

std::optional<reg::ArtifactStore> open_cas(const std::string& home) {
  auto opened = reg::ArtifactStore::open(home);
  if (!opened) {
    std::fprintf(stderr, "sluice artifacts: error: %s\n", opened.error().c_str());
    return std::nullopt;
  }
  return std::move(*opened);
}

int usage(const std::string& message) { return usage_error(artifacts_command(), message); }

int ls(reg::Store& store, const Args& args) {
  const bool json = args.flag("json");
  nlohmann::json list = nlohmann::json::array();
  if (args.positional.size() == 2) {  // one run's outputs
    const std::string& id = args.positional[1];
    if (!store.run(id)) {
      std::fprintf(stderr, "sluice artifacts: error: no run '%s'\n", id.c_str());
      return kExitBadInput;
    }
    if (!json) std::printf("%-30s  %-16s  %-78s  %9s  %s\n", "STEP", "OUTPUT", "DIGEST", "SIZE", "PATH");
    for (const reg::StepRow& s : store.steps(id)) {
      for (const reg::OutputRow& o : store.outputs(id, s.node)) {
        std::optional<reg::ArtifactRow> a = store.artifact(o.digest);
        int64_t size = a ? a->size : 0;
        if (json) {
          list.push_back({{"node", s.node}, {"output", o.name}, {"digest", o.digest}, {"size", size}, {"path", o.path},
                          {"step_status", reg::to_string(s.status)}});
        } else {
          std::printf("%-30s  %-16s  %-78s  %9s  %s\n", s.node.c_str(), o.name.c_str(), o.digest.c_str(),
                      format_bytes(size).c_str(), o.path.c_str());
        }
      }
    }
    if (json) std::printf("%s\n", nlohmann::json({{"run", id}, {"artifacts", list}}).dump(2).c_str());
    return kExitSuccess;
  }
  if (!json) std::printf("%-78s  %-4s  %9s  %-20s  %s\n", "DIGEST", "KIND", "SIZE", "CREATED", "PRODUCED BY");
  for (const reg::ArtifactRow& a : store.list_artifacts()) {
    std::vector<reg::LineageRow> producers = store.producers(a.digest);
    std::string by = producers.empty() ? "-" : producers.front().node + " in " + producers.front().run_id;
    if (json) {
      nlohmann::json p = producers.empty() ? nlohmann::json(nullptr)
                                           : nlohmann::json({{"run", producers.front().run_id},
                                                             {"node", producers.front().node},
                                                             {"output", producers.front().name}});
      list.push_back({{"digest", a.digest}, {"kind", reg::to_string(a.kind)}, {"size", a.size},
                      {"created_at", iso_time(a.created_at)}, {"first_producer", p}});
    } else {
      std::printf("%-78s  %-4s  %9s  %-20s  %s\n", a.digest.c_str(), reg::to_string(a.kind), format_bytes(a.size).c_str(),
                  iso_time(a.created_at).c_str(), by.c_str());
    }
  }
  if (json) std::printf("%s\n", nlohmann::json({{"artifacts", list}}).dump(2).c_str());
  return kExitSuccess;
}

int show(reg::Store& store, reg::ArtifactStore& cas, const Args& args) {
  if (args.positional.size() != 2) return usage("'show' takes one DIGEST");
  std::string error;
  std::optional<reg::ArtifactRow> a = find_artifact(store, args.positional[1], error);
  if (!a) {
    std::fprintf(stderr, "sluice artifacts: error: %s\n", error.c_str());
    return kExitBadInput;
  }
  auto digest = reg::Digest::parse(a->digest);
  const bool present = digest && cas.exists(*digest);
  std::vector<reg::LineageRow> producers = store.producers(a->digest), consumers = store.consumers(a->digest);
  std::vector<reg::TreeEntry> entries;
  if (present && digest->kind == reg::Kind::Tree)
    if (auto t = cas.read_tree(*digest)) entries = std::move(*t);
  if (args.flag("json")) {
    nlohmann::json j = {{"digest", a->digest}, {"kind", reg::to_string(a->kind)}, {"size", a->size},
                        {"created_at", iso_time(a->created_at)}, {"stored", present},
                        {"object", digest ? cas.object_path(*digest) : ""}};
    nlohmann::json p = nlohmann::json::array(), c = nlohmann::json::array(), e = nlohmann::json::array();
    for (const auto& r : producers) p.push_back({{"run", r.run_id}, {"node", r.node}, {"output", r.name}, {"path", r.path}});
    for (const auto& r : consumers) c.push_back({{"run", r.run_id}, {"node", r.node}, {"input", r.name}});
    for (const auto& t : entries)
      e.push_back({{"path", t.path},
                   {"type", t.type == reg::TreeEntry::Type::File ? "file" : t.type == reg::TreeEntry::Type::Dir ? "dir" : "link"},
                   {"digest", t.hex.empty() ? "" : "sha256:" + t.hex},
                   {"target", t.target},
                   {"executable", t.executable}});
    j["produced_by"] = p;
    j["consumed_by"] = c;
    if (digest && digest->kind == reg::Kind::Tree) j["entries"] = e;
    std::printf("%s\n", j.dump(2).c_str());
    return kExitSuccess;
  }
  std::printf("%s\n  kind     %s\n  size     %s (%lld bytes)\n  created  %s\n  stored   %s\n", a->digest.c_str(),
              reg::to_string(a->kind), format_bytes(a->size).c_str(), static_cast<long long>(a->size),
              iso_time(a->created_at).c_str(), present ? cas.object_path(*digest).c_str() : "no (missing from the artifact store)");
  for (const auto& r : producers)
    std::printf("  produced by %s in run %s (output '%s', %s)\n", r.node.c_str(), r.run_id.c_str(), r.name.c_str(), r.path.c_str());
  for (const auto& r : consumers)
    std::printf("  consumed by %s in run %s (input '%s')\n", r.node.c_str(), r.run_id.c_str(), r.name.c_str());
  if (!entries.empty()) std::printf("  entries:\n");
  for (const auto& t : entries) {
    if (t.type == reg::TreeEntry::Type::Dir) std::printf("    %s/\n", t.path.c_str());
    else if (t.type == reg::TreeEntry::Type::Symlink) std::printf("    %s -> %s\n", t.path.c_str(), t.target.c_str());
    else std::printf("    %s  sha256:%s%s\n", t.path.c_str(), t.hex.c_str(), t.executable ? "  (executable)" : "");
  }
  return kExitSuccess;
}

int cat(reg::Store& store, reg::ArtifactStore& cas, const Args& args) {
  if (args.positional.size() < 2 || args.positional.size() > 3) return usage("'cat' takes DIGEST and, for a folder, a PATH inside it");
  std::string error;
  std::optional<reg::ArtifactRow> a = find_artifact(store, args.positional[1], error);
  std::optional<reg::Digest> digest;
  if (a) {
    auto d = reg::Digest::parse(a->digest);
    if (d) digest = *d;
  } else if (auto d = reg::Digest::parse(args.positional[1]); d && cas.exists(*d)) {
    digest = *d;  // an object nobody recorded (e.g. a log) is still readable by its whole digest
  }
  if (!digest) {
    std::fprintf(stderr, "sluice artifacts: error: %s\n", error.c_str());
    return kExitBadInput;
  }
  if (args.positional.size() == 3) {
    if (digest->kind != reg::Kind::Tree) return usage("PATH is only for a folder artifact; " + digest->str() + " is a file");
    auto entries = cas.read_tree(*digest);
    if (!entries) {
      std::fprintf(stderr, "sluice artifacts: error: %s\n", entries.error().c_str());
      return kExitRunFailed;
    }
    const std::string& path = args.positional[2];
    auto it = std::find_if(entries->begin(), entries->end(), [&](const reg::TreeEntry& e) { return e.path == path; });
    if (it == entries->end() || it->type != reg::TreeEntry::Type::File) {
      std::fprintf(stderr, "sluice artifacts: error: %s holds no file '%s'\n", digest->str().c_str(), path.c_str());
      return kExitBadInput;
    }
    digest = reg::Digest{reg::Kind::File, it->hex};
  }
  auto bytes = cas.read(*digest);
  if (!bytes) {
    std::fprintf(stderr, "sluice artifacts: error: %s\n", bytes.error().c_str());
    return kExitRunFailed;
  }
  std::fwrite(bytes->data(), 1, bytes->size(), stdout);
  return kExitSuccess;
}

int verify(reg::ArtifactStore& cas, const Args& args) {
  auto objects = cas.list();
  auto issues = cas.verify();
  if (!objects || !issues) {
    std::fprintf(stderr, "sluice artifacts: error: %s\n", (!objects ? objects.error() : issues.error()).c_str());
    return kExitInternal;
  }
  if (args.flag("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& i : *issues)
      list.push_back({{"path", i.path}, {"expected", i.expected}, {"actual", i.actual}, {"error", i.error}});
    std::printf("%s\n", nlohmann::json({{"objects", objects->size()}, {"ok", issues->empty()}, {"issues", list}}).dump(2).c_str());
  } else {
    for (const auto& i : *issues) {
      if (!i.error.empty()) std::printf("DAMAGED %s: %s\n", i.path.c_str(), i.error.c_str());
      else std::printf("DAMAGED %s: its bytes hash to sha256:%s, not to its name\n", i.path.c_str(), i.actual.c_str());
    }
    if (issues->empty()) std::printf("%zu objects verified: every object matches its digest\n", objects->size());
    else std::printf("%zu of %zu objects damaged\n", issues->size(), objects->size());
  }
  return issues->empty() ? kExitSuccess : kExitRunFailed;
}

int run_artifacts(const Args& args) {
  const std::string& sub = args.positional[0];
  if (sub != "ls" && sub != "show" && sub != "cat" && sub != "verify")
    return usage("unknown subcommand '" + sub + "': use ls, show, cat or verify");
  if ((sub == "ls" && args.positional.size() > 2) || (sub == "verify" && args.positional.size() > 1))
    return usage("unexpected argument '" + args.positional.back() + "'");
  const std::string home = state_home(args);
  if (sub == "verify") {
    std::optional<reg::ArtifactStore> cas = open_cas(home);
    return cas ? verify(*cas, args) : kExitInternal;
  }
  auto store = open_history_store("artifacts", home);
  if (!store) return kExitBadInput;
  if (sub == "ls") return ls(*store, args);
  std::optional<reg::ArtifactStore> cas = open_cas(home);
  if (!cas) return kExitInternal;
  return sub == "show" ? show(*store, *cas, args) : cat(*store, *cas, args);
}

}  // namespace

const Command& artifacts_command() {
  static const Command cmd{"artifacts",
                           "list, inspect, print and verify artifacts in the content-addressed store",
                           "sluice artifacts ls [RUN] | show DIGEST | cat DIGEST [PATH] | verify  [--json] [--home DIR]",
                           "ls       every recorded artifact, newest first; with RUN, that run's outputs\n"
                           "show     an artifact's kind, size, where it is stored, the steps that produced\n"
                           "         and consumed it, and a folder's entries\n"
                           "cat      an artifact's bytes (a folder's listing, or with PATH one file in it)\n"
                           "verify   re-hash every object; exit status 1 when any no longer matches its digest\n"
                           "DIGEST is sha256:<hex> (sha256:<hex>.tree for a folder) or a unique start of one.",
                           {kJsonOption, kHomeOption},
                           1,
                           3,
                           run_artifacts};
  return cmd;
}

}  // namespace sluice::engine
