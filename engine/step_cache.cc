#include "engine/step_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dsl/paths.h"
#include "engine/cache_prefetch.h"
#include "registry/artifact_store.h"
#include "registry/sha256.h"
#include "registry/sqlite_store.h"
#include "stdlib/embedded.h"

namespace sluice::engine {

namespace fs = std::filesystem;
namespace reg = sluice::registry;

namespace {

// The Lua standard library compiled into this binary (stdlib/): what a Lua
// step's `require` can load, so its digest is part of every Lua step's key.
// Each file as "<path>\n<size>\n<bytes>", in path order.
const std::string& stdlib_digest() {
  static const std::string digest = [] {
    std::string all;
    for (const stdlib::EmbeddedFile& f : stdlib::embedded_files())
      all.append(f.path).append("\n").append(std::to_string(f.source.size())).append("\n").append(f.source);
    return "sha256:" + reg::sha256_hex(all);
  }();
  return digest;
}

std::optional<std::string> real_path(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (!r) return std::nullopt;
  std::string s(r);
  std::free(r);
  return s;
}

bool is_inside(const std::string& root, const std::string& p) {
  if (root == "/") return true;
  return p == root || (p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/');
}

// What identifies a file's state: a write, a chmod or a replacement moves one.
struct FileState {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  mode_t mode = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  friend bool operator==(const FileState&, const FileState&) = default;
};

std::optional<FileState> state_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return FileState{path,
                   st.st_dev,
                   st.st_ino,
                   st.st_size,
                   st.st_mode,
                   int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
                   int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec};
}

// The state of `path` and, for a folder, of everything inside it.
std::vector<FileState> snapshot(const std::string& path) {
  std::vector<FileState> out;
  if (auto s = state_of(path)) out.push_back(*s);
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(path, ec))) return out;
  for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (auto s = state_of(it->path().string())) out.push_back(*s);
  return out;
}

std::string type_name(fs::file_type t) {
  switch (t) {
    case fs::file_type::fifo: return "a FIFO";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::character: return "a character device";
    case fs::file_type::block: return "a block device";
    default: return "a special file";
  }
}

// Why output `name` at `path` (inside `workdir`) cannot be stored, or "".
std::string check_output(const std::string& name, const std::string& path, const std::string& workdir) {
  std::error_code ec;
  const std::string rel = fs::path(path).lexically_relative(workdir).string();
  fs::file_status st = fs::symlink_status(path, ec);
  if (ec || st.type() == fs::file_type::not_found) return {};  // "missing output" is reported elsewhere
  if (st.type() == fs::file_type::regular) return {};  // the common case: one lstat
  auto leads_out = [&](const std::string& shown, const std::string& p, const std::string& root,
                       const std::string& root_real) -> std::string {
    auto target = real_path(p);
    if (!target) return "output '" + name + "': '" + shown + "' is a symlink that cannot be resolved";
    if (!is_inside(root_real, *target))
      return "output '" + name + "': '" + shown + "' leads outside " + root + " (it resolves to '" + *target + "')";
    return {};
  };
  if (st.type() == fs::file_type::symlink) {
    auto work_real = real_path(workdir);
    if (!work_real) return "cannot resolve the work dir '" + workdir + "'";
    if (std::string why = leads_out(rel, path, "the work dir '" + *work_real + "'", *work_real); !why.empty()) return why;
    st = fs::status(path, ec);
  }
  if (st.type() == fs::file_type::regular) return {};
  if (st.type() != fs::file_type::directory)
    return "output '" + name + "': '" + rel + "' is " + type_name(st.type()) +
           "; only files, folders and symlinks can be stored";
  auto folder_real = real_path(path);
  if (!folder_real) return "cannot resolve output '" + name + "'";
  for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string shown = fs::path(rel) / it->path().lexically_relative(path);
    fs::file_status es = it->symlink_status(ec);
    if (es.type() == fs::file_type::symlink) {
      if (std::string why = leads_out(shown, it->path().string(), "the folder '" + rel + "'", *folder_real); !why.empty())
        return why;
    } else if (es.type() != fs::file_type::regular && es.type() != fs::file_type::directory) {
      return "output '" + name + "': '" + shown + "' is " + type_name(es.type()) +
             "; only files, folders and symlinks can be stored";
    }
  }
  return {};
}

std::string read_text(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

struct StepCache::Impl {
  Impl(const dsl::Workflow& w, const RunOptions& o, RunRecord& r) : wf(w), opt(o), rec(r) {
    std::error_code ec;
    wf_dir = fs::absolute(fs::path(wf.path), ec).parent_path().string();
    run_dir = (fs::path(opt.home) / "runs" / opt.run_id).string();
    inputs_of.resize(wf.dag.size());
    unrestored.assign(wf.dag.size(), false);
  }

  const dsl::Step& step_of(uint32_t node) const { return wf.steps[wf.dag.node(node).step]; }
  const std::string& name_of(uint32_t node) const { return wf.dag.node(node).name; }
  std::string workdir_of(uint32_t node) const { return run_dir + "/" + name_of(node); }  // as the executor makes it

  reg::Store* store(std::string& error) {
    if (!store_) {
      try {
        store_ = reg::open_sqlite_store(opt.home + "/sluice.db");
      } catch (const std::exception& e) {
        error = e.what();
        return nullptr;
      }
    }
    return store_.get();
  }

  reg::ArtifactStore* cas(std::string& error) {
    if (!cas_) {
      reg::StoreOptions so;
      so.materialize_copies = ::geteuid() == 0;
      auto opened = reg::ArtifactStore::open(opt.home, so);
      if (!opened) {
        error = opened.error();
        return nullptr;
      }
      cas_ = std::make_unique<reg::ArtifactStore>(std::move(*opened));
    }
    return cas_.get();
  }

  // ---- digests

  // The digest of output `name` of `up` (a node of this run), storing it on
  // first use; false with `error`.
  bool output_digest(uint32_t up, const std::string& name, std::string& digest, std::string& error) {
    NodeRecord& u = rec.nodes[up];
    if (auto it = u.output_digests.find(name); it != u.output_digests.end()) {
      digest = it->second;
      return true;
    }
    auto path = u.outputs.find(name);
    if (path == u.outputs.end() || u.workdir.empty()) {
      error = "output '" + name + "' of step '" + name_of(up) + "' is not available: the step did not run in this run";
      return false;
    }
    reg::ArtifactStore* store = cas(error);
    if (!store) return false;
    const std::string rel = fs::path(path->second).lexically_relative(u.workdir).string();
    std::error_code ec;
    auto d = fs::is_directory(path->second, ec) ? store->put_tree_at(u.workdir, rel) : store->put_file_at(u.workdir, rel);
    if (!d) {
      error = "output '" + name + "' of step '" + name_of(up) + "': " + d.error();
      return false;
    }
    digest = u.output_digests[name] = d->str();
    return true;
  }

  // Where input `in` of `node` comes from; memoised in the node's record.
  bool input_source(uint32_t node, const dsl::NamedTemplate& in, const RefLookup& resolve, InputSource& src,
                    std::string& error) {
    NodeRecord& nr = rec.nodes[node];
    if (auto it = nr.input_sources.find(in.name); it != nr.input_sources.end()) {
      src = it->second;
      return true;
    }
    const std::string what = "input '" + in.name + "'";
    // Exactly one upstream output: its digest, whatever its path.
    if (in.value.parts.size() == 1 && in.value.parts[0].is_ref && in.value.parts[0].ref.kind == dsl::Ref::Kind::StepOutput) {
      const dsl::Ref& ref = in.value.parts[0].ref;
      uint32_t up = wf.dag.instances(static_cast<uint32_t>(wf.step_index(ref.step)))[0];
      src.from_node = name_of(up);
      src.from_output = ref.key;
      src.source = rec.nodes[up].outputs.count(ref.key) ? rec.nodes[up].outputs.at(ref.key) : std::string();
      if (!output_digest(up, ref.key, src.digest, error)) return false;
      nr.input_sources[in.name] = src;
      return true;
    }
    std::string path;
    for (const dsl::TemplatePart& p : in.value.parts) {
      if (!p.is_ref) {
        path += p.literal;
        continue;
      }
      std::string v;
      if (!resolve(p.ref, v, error)) return false;
      path += v;
    }
    // A relative path is read from the workflow's folder and may not climb
    // out of it; whatever it names must resolve inside that folder or the
    // state folder (upstream work dirs, the artifact store).
    if (path.empty() || path[0] != '/') {
      if (std::string why = dsl::unsafe_relative_path(path); !why.empty()) {
        error = what + ": " + why;
        return false;
      }
      path = wf_dir + "/" + path;
    }
    reg::ArtifactStore* store = cas(error);
    if (!store) return false;
    // `sluice rerun`: the bytes the earlier run read, when the store still
    // has them (the file itself may have changed or gone since).
    if (auto pn = opt.pinned_inputs.find(name_of(node)); pn != opt.pinned_inputs.end()) {
      if (auto pd = pn->second.find(in.name); pd != pn->second.end()) {
        auto d = reg::Digest::parse(pd->second);
        if (d && store->exists(*d)) {
          src.digest = d->str();
          src.source = path;
          nr.input_sources[in.name] = src;
          return true;
        }
      }
    }
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      error = what + " not found: " + path;
      return false;
    }
    auto real = real_path(path);
    auto wf_real = real_path(wf_dir), home_real = real_path(opt.home);
    if (!real || !wf_real) {
      error = what + ": cannot resolve '" + path + "'";
      return false;
    }
    if (!is_inside(*wf_real, *real) && !(home_real && is_inside(*home_real, *real))) {
      error = what + ": '" + path + "' leads outside the workflow's folder '" + *wf_real + "' (it resolves to '" +
              *real + "')";
      return false;
    }
    src.source = *real;
    if (auto it = external.find(*real); it != external.end()) {
      src.digest = it->second;
    } else {
      auto d = fs::is_directory(*real, ec) ? store->put_tree(*real) : store->put_file(*real);
      if (!d) {
        error = what + ": " + d.error();
        return false;
      }
      src.digest = external[*real] = d->str();
    }
    nr.input_sources[in.name] = src;
    return true;
  }

  // ---- keys

  // The text of a template as a cache key sees it: literals, and references
  // to params, matrix values, run.id and models by value; step values and
  // upstream outputs become parts of their own; inputs, outputs and secrets
  // stay as written (their paths change every run; a secret's value is
  // never part of a key).
  bool definition(const dsl::Template& t, const RefLookup& resolve, KeyBuilder& kb, std::string& out,
                  std::string& error) {
    for (const dsl::TemplatePart& p : t.parts) {
      if (!p.is_ref) {
        out += "L" + std::to_string(p.literal.size()) + ":" + p.literal;
        continue;
      }
      const dsl::Ref& ref = p.ref;
      switch (ref.kind) {
        case dsl::Ref::Kind::Input:
        case dsl::Ref::Kind::Output:
        case dsl::Ref::Kind::Secret:
          out += "P" + ref.text;
          break;
        case dsl::Ref::Kind::StepValue: {
          std::string v;
          if (!resolve(ref, v, error)) return false;
          kb.add_text("value:" + ref.step + "." + ref.key, v);
          out += "P" + ref.text;
          break;
        }
        case dsl::Ref::Kind::StepOutput: {
          uint32_t up = wf.dag.instances(static_cast<uint32_t>(wf.step_index(ref.step)))[0];
          std::string digest;
          if (!output_digest(up, ref.key, digest, error)) return false;
          kb.add_digest("output:" + name_of(up) + "." + ref.key, digest);
          out += "P" + ref.text;
          break;
        }
        default: {
          std::string v;
          if (!resolve(ref, v, error)) return false;
          out += "R" + ref.text + "=" + std::to_string(v.size()) + ":" + v;
        }
      }
    }
    return true;
  }

  bool compute_key(uint32_t node, const RefLookup& resolve, std::string& error) {
    NodeRecord& nr = rec.nodes[node];
    const dsl::Step& step = step_of(node);
    KeyBuilder kb;
    std::string def;
    auto whole_context = [&] {
      // Lua scripts and plugins may read every param and every upstream
      // instance's values and outputs (ctx.params, ctx.steps).
      nlohmann::json params = nlohmann::json::object();
      for (const auto& [k, v] : opt.params) params[k] = v.to_text();
      kb.add_text("params", params.dump());
      kb.add_digest("stdlib", stdlib_digest());
      for (uint32_t up : wf.dag.predecessors(node)) {
        for (const auto& [k, v] : rec.nodes[up].values) kb.add_text("value:" + name_of(up) + "." + k, v);
        for (const auto& [o, path] : rec.nodes[up].outputs) {
          std::string digest;
          if (!output_digest(up, o, digest, error)) return false;
          kb.add_digest("output:" + name_of(up) + "." + o, digest);
        }
      }
      return true;
    };
    switch (step.kind) {
      case dsl::ActionKind::Run:
        if (!definition(step.command, resolve, kb, def, error)) return false;
        kb.add_text("command", def);
        break;
      case dsl::ActionKind::Lua: {
        bool ok = false;
        std::string bytes = read_text(fs::path(wf_dir) / step.script, ok);
        if (!ok) {
          error = "cannot read Lua script " + step.script;
          return false;
        }
        kb.add_text("script", bytes);
        if (!whole_context()) return false;
        break;
      }
      case dsl::ActionKind::LuaInline:
        kb.add_text("script", step.script);
        if (!whole_context()) return false;
        break;
      case dsl::ActionKind::Uses: {
        def = step.plugin + "." + step.action + "\n";
        for (const dsl::WithArg& a : step.with) def += a.name + "=" + a.value.to_json() + "\n";
        for (const dsl::Template& t : step.with_templates)
          if (!definition(t, resolve, kb, def, error)) return false;
        kb.add_text("action", def);
        std::string version = opt.plugin_version ? opt.plugin_version(step.plugin) : std::string();
        kb.add_digest("plugin:" + step.plugin, version.empty() ? "unknown" : version);
        break;
      }
    }
    std::string env;
    for (const auto* list : {&wf.env, &step.env})
      for (const dsl::NamedTemplate& e : *list) {
        env += e.name + "=";
        if (!definition(e.value, resolve, kb, env, error)) return false;
        env += "\n";
      }
    kb.add_text("env", env);
    std::string outputs;
    for (const dsl::NamedTemplate& o : step.outputs) outputs += o.name + "=" + o.value.text + "\n";
    kb.add_text("outputs", outputs);
    for (const dsl::NamedTemplate& in : step.inputs) {
      InputSource src;
      if (!input_source(node, in, resolve, src, error)) return false;
      kb.add_digest("input:" + in.name, src.digest);
    }
    nr.cache_key = kb.finish(nr.key_parts);
    return true;
  }

  // ---- restoring

  // Makes `node` hold the result recorded for (run_id, src_node): its
  // outputs' digests and paths in its work dir, its values. The files are
  // materialised only when a step that runs depends on the node
  // (materialize_restored), so a fully cached run touches no files. False
  // when the record is incomplete or an object is gone from the store.
  bool restore_from(uint32_t node, const std::string& run_id, const std::string& src_node) {
    std::string error;
    reg::Store* db = store(error);
    if (!db) return false;
    return restore_result(node, db->outputs(run_id, src_node), db->values(run_id, src_node));
  }

  bool restore_result(uint32_t node, const std::vector<reg::OutputRow>& outputs, const std::vector<reg::ValueRow>& values) {
    std::string error;
    reg::ArtifactStore* objects = cas(error);
    if (!objects) return false;
    const dsl::Step& step = step_of(node);
    std::map<std::string, std::string> digests;
    for (const reg::OutputRow& o : outputs) {
      auto d = reg::Digest::parse(o.digest);
      if (!d || !objects->exists(*d)) return false;
      digests.emplace(o.name, d->str());
    }
    NodeRecord& nr = rec.nodes[node];
    const std::string workdir = workdir_of(node);
    std::map<std::string, std::string> paths;
    for (const dsl::NamedTemplate& o : step.outputs) {
      if (!digests.count(o.name)) return false;
      paths[o.name] = workdir + "/" + o.value.text;
    }
    nr.workdir = workdir;
    nr.outputs = std::move(paths);
    nr.output_digests = std::move(digests);
    nr.values.clear();
    for (const reg::ValueRow& v : values) nr.values[v.key] = v.value;
    unrestored[node] = true;
    return true;
  }

  // Materialises the outputs of restored (cached) steps that `node` depends
  // on into their work dirs, read-only: a step may name them by path.
  bool materialize_restored(uint32_t node, std::string& error) {
    for (uint32_t up : wf.dag.predecessors(node)) {
      if (!unrestored[up]) continue;
      NodeRecord& u = rec.nodes[up];
      reg::ArtifactStore* objects = cas(error);
      if (!objects) return false;
      std::error_code ec;
      fs::create_directories(u.workdir, ec);
      for (const dsl::NamedTemplate& o : step_of(up).outputs) {
        if (o.value.text.find('/') != std::string::npos)
          fs::create_directories(fs::path(u.outputs.at(o.name)).parent_path(), ec);
        auto d = reg::Digest::parse(u.output_digests.at(o.name));
        auto done = d ? objects->materialize_at(*d, u.workdir, o.value.text, reg::OnExisting::Replace) : reg::Result<void>(reg::Error{d.error()});
        if (!done) {
          error = "cannot restore output '" + o.name + "' of cached step '" + name_of(up) + "': " + done.error();
          return false;
        }
      }
      unrestored[up] = false;
    }
    return true;
  }

  bool restore(uint32_t node, const RefLookup& resolve) {
    NodeRecord& nr = rec.nodes[node];
    const dsl::Step& step = step_of(node);
    std::string error;
    if (auto it = opt.reuse.find(name_of(node)); it != opt.reuse.end()) {
      if (restore_from(node, it->second, name_of(node))) {
        nr.cache_note = "reused " + it->second + " " + name_of(node);
        if (reg::Store* db = store(error)) {
          if (auto s = db->step(it->second, name_of(node))) nr.cache_key = s->cache_key;
          for (const reg::KeyPartRow& k : db->key_parts(it->second, name_of(node))) nr.key_parts.push_back({k.part, k.digest});
        }
        return true;
      }
    }
    if (!step.cache) {
      nr.cache_note = "off step";
      return false;
    }
    if (step.outputs.empty()) {
      nr.cache_note = "off no-outputs";
      return false;
    }
    if (!compute_key(node, resolve, error)) {
      // The attempt reports it (a missing input, an unknown value).
      nr.cache_key.clear();
      nr.key_parts.clear();
      nr.cache_note = "miss";
      return false;
    }
    if (opt.no_cache) {
      nr.cache_note = "off run";
      return false;
    }
    nr.cache_note = "miss";
    reg::Store* db = store(error);
    if (!db) return false;
    std::optional<reg::CachedResult> hit = prefetched(*db, nr.cache_key);
    if (!hit) hit = db->cached_result(nr.cache_key);
    if (!hit || !restore_result(node, hit->outputs, hit->values)) return false;
    nr.cache_note = "hit " + hit->entry.run_id + " " + hit->entry.node;
    return true;
  }

  // The entry under `key` among those the previous run of this workflow
  // used or made, read in one go at the first lookup, or earlier while the
  // file was parsed (a re-run mostly hits exactly those); nullopt means: ask
  // the store.
  std::optional<reg::CachedResult> prefetched(reg::Store& db, const std::string& key) {
    if (!prefetch_done) {
      prefetch_done = true;
      std::optional<std::vector<reg::CachedResult>> entries;
      if (opt.cache_prefetch) entries = opt.cache_prefetch->take(wf.name, opt.run_id);
      if (!entries) {
        const std::string previous = db.previous_run(wf.name, opt.run_id);
        if (!previous.empty()) entries = db.cached_results_of_run(previous);
      }
      if (entries)
        for (reg::CachedResult& r : *entries) {
          std::string k = r.entry.cache_key;
          prefetch.emplace(std::move(k), std::move(r));
        }
    }
    auto it = prefetch.find(key);
    if (it == prefetch.end()) return std::nullopt;
    std::optional<reg::CachedResult> out = std::move(it->second);
    prefetch.erase(it);
    return out;
  }

  // ---- inputs

  bool stage_inputs(uint32_t node, const RefLookup& resolve, std::map<std::string, std::string>& paths,
                    std::string& error) {
    const dsl::Step& step = step_of(node);
    NodeRecord& nr = rec.nodes[node];
    inputs_of[node].clear();
    if (!materialize_restored(node, error)) return false;
    for (const dsl::NamedTemplate& in : step.inputs) {
      InputSource src;
      if (!input_source(node, in, resolve, src, error)) return false;
      reg::ArtifactStore* objects = cas(error);
      if (!objects) return false;
      auto digest = reg::Digest::parse(src.digest);
      if (!digest) {
        error = "input '" + in.name + "': " + digest.error();
        return false;
      }
      std::string base = fs::path(src.source).filename().string();
      if (base.empty() || base == "." || base == "..") base = in.name;
      const std::string folder = nr.workdir + "/inputs/" + in.name;
      std::error_code ec;
      fs::create_directories(folder, ec);
      if (ec) {
        error = "input '" + in.name + "': cannot create " + folder + ": " + ec.message();
        return false;
      }
      const std::string rel = "inputs/" + in.name + "/" + base;
      auto done = objects->materialize_at(*digest, nr.workdir, rel, reg::OnExisting::Replace);
      if (!done) {
        error = "input '" + in.name + "': " + done.error();
        return false;
      }
      paths[in.name] = nr.workdir + "/" + rel;
      inputs_of[node].push_back({in.name, snapshot(paths[in.name])});
    }
    return true;
  }

  std::string check_attempt(uint32_t node) {
    const NodeRecord& nr = rec.nodes[node];
    for (const auto& [name, path] : nr.outputs)
      if (std::string why = check_output(name, path, nr.workdir); !why.empty()) return why;
    for (const auto& [name, before] : inputs_of[node]) {
      std::vector<FileState> now = before.empty() ? std::vector<FileState>{} : snapshot(before.front().path);
      if (now != before)
        return "input '" + name + "' was changed by the step: inputs are read-only, write to an output instead";
    }
    return {};
  }

  const dsl::Workflow& wf;
  const RunOptions& opt;
  RunRecord& rec;
  std::string wf_dir, run_dir;
  std::unique_ptr<reg::Store> store_;
  std::unique_ptr<reg::ArtifactStore> cas_;
  std::map<std::string, std::string> external;  // resolved path -> digest, this run
  std::vector<bool> unrestored;  // per node: restored from the cache, files not yet materialised
  bool prefetch_done = false;
  std::unordered_map<std::string, reg::CachedResult> prefetch;  // by cache key: see prefetched()
  // Per node: each staged input and the state of what was materialised.
  std::vector<std::vector<std::pair<std::string, std::vector<FileState>>>> inputs_of;
};

StepCache::StepCache(const dsl::Workflow& wf, const RunOptions& options, RunRecord& rec)
    : impl_(std::make_unique<Impl>(wf, options, rec)) {}

StepCache::~StepCache() = default;

bool StepCache::restore(uint32_t node, const RefLookup& resolve) { return impl_->restore(node, resolve); }

bool StepCache::restore_recorded(uint32_t node) {
  return impl_->restore_from(node, impl_->opt.run_id, impl_->name_of(node));
}

bool StepCache::stage_inputs(uint32_t node, const RefLookup& resolve, std::map<std::string, std::string>& paths,
                             std::string& error) {
  return impl_->stage_inputs(node, resolve, paths, error);
}

std::string StepCache::check_attempt(uint32_t node) { return impl_->check_attempt(node); }

}  // namespace sluice::engine
