#include "registry/registration.h"

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "registry/sqlite_store.h"

namespace sluice::registry {

namespace fs = std::filesystem;

namespace {

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return {};
  return buf;
}

// Where a path lies among the run work dirs: <home>/runs/<run>/<node>/<rel>.
struct WorkPlace {
  std::string run_id, node, rel;
};

std::optional<WorkPlace> work_place(const std::string& runs_real, const std::string& real) {
  if (runs_real.empty() || real.size() <= runs_real.size() + 1 || real.compare(0, runs_real.size(), runs_real) != 0 ||
      real[runs_real.size()] != '/')
    return std::nullopt;
  fs::path rest = fs::path(real.substr(runs_real.size() + 1));
  auto it = rest.begin();
  WorkPlace w;
  if (it == rest.end()) return std::nullopt;
  w.run_id = (it++)->string();
  if (it == rest.end()) return std::nullopt;
  w.node = (it++)->string();
  fs::path rel;
  for (; it != rest.end(); ++it) rel /= *it;
  if (rel.empty()) return std::nullopt;
  w.rel = rel.string();
  return w;
}

class Intake {
 public:
  Intake(const Registration& r, Store& store, ArtifactStore& cas) : r_(r), store_(store), cas_(cas) {
    runs_real_ = real_path(r.home + "/runs");
  }

  // The artifact at `path` (absolute): its digest, and the recorded step that
  // produced it when one is known ("" run otherwise).
  struct Found {
    std::string digest;
    ArtifactKind kind = ArtifactKind::File;
    int64_t size = 0;
    std::string run_id, node;
  };

  Result<Found> find(const std::string& path) {
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) return Error{"'" + path + "' does not exist"};
    if (!fs::is_regular_file(st) && !fs::is_directory(st))
      return Error{"'" + path + "' is neither a file nor a folder"};
    const bool dir = fs::is_directory(st);
    Found f;
    f.kind = dir ? ArtifactKind::Tree : ArtifactKind::File;
    std::optional<WorkPlace> place = work_place(runs_real_, real_path(path));
    const bool self = place && place->run_id == r_.run_id && place->node == r_.node;
    if (place && !self) {
      // An upstream step's output: the recorder stores it when the step
      // finishes; wait for that record and take the digest from it.
      if (!wait_recorded(place->run_id, place->node))
        return Error{"step '" + place->node + "' of run " + place->run_id +
                     " produced '" + path + "' but is not recorded as finished in the store (waited " +
                     std::to_string(r_.wait.count()) + " ms)"};
      for (const OutputRow& o : store_.outputs(place->run_id, place->node)) {
        if (fs::path(o.path).lexically_normal() == fs::path(place->rel).lexically_normal()) {
          f.digest = o.digest;
          f.run_id = place->run_id;
          f.node = place->node;
          break;
        }
      }
    }
    if (f.digest.empty()) {
      auto d = dir ? cas_.put_tree(path) : cas_.put_file(path);
      if (!d) return Error{d.error()};
      f.digest = d->str();
    }
    if (auto row = store_.artifact(f.digest)) {
      f.size = row->size;
    } else {
      auto size = cas_.size(*Digest::parse(f.digest));
      f.size = size ? static_cast<int64_t>(*size) : 0;
      store_.apply({PutArtifact{f.digest, f.kind, f.size, now_ms()}});
    }
    if (f.run_id.empty()) {
      // Bytes some recorded step produced (an input materialised from it, or
      // a copy): lineage goes to that step, this run's first.
      std::vector<LineageRow> producers = store_.producers(f.digest);
      const LineageRow* pick = nullptr;
      for (const LineageRow& p : producers)
        if (!pick || p.run_id == r_.run_id || pick->run_id != r_.run_id) pick = &p;
      if (pick) {
        f.run_id = pick->run_id;
        f.node = pick->node;
      } else if (self) {
        f.run_id = r_.run_id;
        f.node = r_.node;
      }
    }
    return f;
  }

  bool wait_recorded(const std::string& run_id, const std::string& node) {
    const auto deadline = std::chrono::steady_clock::now() + r_.wait;
    for (;;) {
      std::optional<StepRow> s = store_.step(run_id, node);
      if (s && is_final(s->status)) return true;
      if (std::chrono::steady_clock::now() >= deadline || (r_.cancelled && r_.cancelled())) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  const Registration& r_;
  Store& store_;
  ArtifactStore& cas_;
  std::string runs_real_;
};

// The last value reported for each metric name, by name.
std::vector<MetricValue> last_metrics(const std::vector<MetricRow>& rows) {
  std::map<std::string, double> last;
  for (const MetricRow& m : rows) last[m.name] = m.value;
  std::vector<MetricValue> out;
  for (const auto& [name, value] : last) out.push_back({name, value});
  return out;
}

nlohmann::json object_or_empty(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text.empty() ? "{}" : text, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

std::string file_name(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
  return name.empty() || name == "." || name == ".." ? std::string("artifact") : name;
}

}  // namespace

Result<ModelVersion> register_artifact(const Registration& r) {
  if (std::string e = check_model_name(r.model); !e.empty()) return Error{e};
  try {
    std::unique_ptr<Store> store = open_sqlite_store(r.home + "/sluice.db");
    auto cas = ArtifactStore::open(r.home);
    if (!cas) return Error{cas.error()};
    Intake intake(r, *store, *cas);
    const std::string path = fs::absolute(r.artifact).string();
    auto found = intake.find(path);
    if (!found) return Error{"artifact: " + found.error()};

    NewVersion nv;
    nv.model = r.model;
    nv.digest = found->digest;
    nv.kind = found->kind;
    nv.size = found->size;
    nv.filename = file_name(r.artifact);
    nv.format = r.format;
    nv.description = r.description;
    nv.tags = r.tags;
    nv.actor = r.actor;
    nv.lineage.registered_run = r.run_id;
    nv.lineage.registered_node = r.node;
    nv.lineage.run_id = found->run_id;
    nv.lineage.node = found->node;

    const bool by_self = !found->run_id.empty() && found->run_id == r.run_id && found->node == r.node;
    std::vector<MetricValue> metrics;
    nlohmann::json params = nlohmann::json::object();
    if (!found->run_id.empty()) {
      if (std::optional<RunRow> run = store->run(found->run_id)) {
        nv.lineage.workflow_digest = run->workflow_digest;
        nv.lineage.git_commit = run->git_commit;
        params = object_or_empty(run->params_json);
      }
      if (std::optional<StepRow> step = store->step(found->run_id, found->node)) {
        nlohmann::json matrix = object_or_empty(step->matrix_json);
        for (auto it = matrix.begin(); it != matrix.end(); ++it) params[it.key()] = it.value();
      }
      if (by_self) {
        metrics = r.step_metrics;
        for (const auto& [name, in_path] : r.step_inputs) {
          auto in = intake.find(fs::absolute(in_path).string());
          if (!in) return Error{"input '" + name + "': " + in.error()};
          nv.lineage.inputs.push_back({name, in->digest});
        }
      } else {
        metrics = last_metrics(store->metrics(found->run_id, found->node));
        for (const InputRow& in : store->inputs(found->run_id, found->node))
          nv.lineage.inputs.push_back({in.name, in.digest});
      }
    }
    nv.metrics = r.metrics ? *r.metrics : metrics;
    if (r.params_json) {
      nlohmann::json given = nlohmann::json::parse(*r.params_json, nullptr, false);
      if (!given.is_object()) return Error{"params must be a JSON object"};
      nv.params_json = given.dump();
    } else {
      nv.params_json = params.dump();
    }
    ModelRegistry registry(r.home + "/sluice.db");
    return registry.register_version(nv);
  } catch (const StoreError& e) {
    return Error{std::string("the model registry cannot be written: ") + e.what()};
  }
}

}  // namespace sluice::registry
