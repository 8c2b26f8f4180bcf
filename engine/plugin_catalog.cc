#include "engine/plugin_catalog.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "dsl/names.h"
#include "engine/lua_plugin.h"
#include "engine/native_plugin.h"

namespace sluice::engine {

namespace fs = std::filesystem;

namespace {

// Absolute, normalised, without a trailing slash.
std::string clean(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  std::string s = (ec ? p : abs).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// How messages name a file: relative to the current directory when it is
// inside it, else absolute.
std::string display(const std::string& path) {
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  if (ec) return path;
  const fs::path rel = fs::path(path).lexically_relative(cwd);
  if (rel.empty() || *rel.begin() == "..") return path;
  return rel.string();
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

}  // namespace

std::vector<std::string> plugin_search_path(const std::string& workflow_dir) {
  std::vector<std::string> out;
  auto add = [&out](const fs::path& p) {
    std::string s = clean(p);
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  };
  if (!workflow_dir.empty()) add(fs::path(workflow_dir) / "plugins");
  add("plugins");
  if (const char* env = std::getenv("SLUICE_PLUGIN_PATH")) {
    std::string_view rest = env;
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      std::string_view part = rest.substr(0, colon);
      if (!part.empty()) add(fs::path(std::string(part)));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    const fs::path dir = fs::path(std::string(exe, static_cast<size_t>(n))).parent_path();
    add(dir / "plugins");
    add(dir / ".." / "lib" / "sluice" / "plugins");
  }
  return out;
}

PluginCatalog::PluginCatalog(std::vector<std::string> search_path) : search_path_(std::move(search_path)) {}

PluginCatalog::~PluginCatalog() = default;

void PluginCatalog::add_builtin(dsl::PluginManifest manifest, std::shared_ptr<ActionHandler> handler) {
  std::lock_guard lock(mu_);
  manifest.kind = dsl::PluginKind::Builtin;
  if (manifest.path.empty()) manifest.path = "<builtin>";
  std::string name = manifest.name;
  entries_[name] = Entry{std::make_unique<dsl::PluginManifest>(std::move(manifest)), std::move(handler)};
  broken_.erase(name);
}

PluginCatalog::Entry* PluginCatalog::locate(const std::string& name, std::string& error) {
  if (auto it = entries_.find(name); it != entries_.end()) return &it->second;
  if (auto it = broken_.find(name); it != broken_.end()) {
    error = it->second;
    return nullptr;
  }
  std::string unbuilt;  // a native plugin's source folder met on the way (its library not built)
  if (dsl::is_plugin_name(name)) {
    for (const std::string& dir : search_path_) {
      const std::string folder = dir + "/" + name;
      std::error_code ec;
      if (!fs::is_regular_file(folder + "/plugin.toml", ec)) continue;
      dsl::Diagnostics diags;
      std::optional<dsl::PluginManifest> m = dsl::load_plugin_manifest(folder, diags, display(folder + "/plugin.toml"));
      if (!m) {
        error = diags.format_all();
        broken_[name] = error;
        return nullptr;
      }
      // A native plugin folder without its library is a source tree (e.g.
      // ./plugins in a checkout of sluice): look further, where it is built.
      if (m->kind == dsl::PluginKind::Native && !fs::exists(m->library, ec)) {
        if (unbuilt.empty()) unbuilt = display(folder + "/plugin.toml");
        continue;
      }
      auto [it, added] = entries_.emplace(name, Entry{std::make_unique<dsl::PluginManifest>(std::move(*m)), nullptr});
      return &it->second;
    }
  }
  if (!unbuilt.empty()) {
    error = "native plugin '" + name + "' is not built: " + unbuilt + " names a library that does not exist, and no other " +
            name + "/plugin.toml is in " + join(search_path_);
    return nullptr;
  }
  error = "no plugin '" + name + "' on the search path: no " + name + "/plugin.toml in " + join(search_path_);
  return nullptr;
}

const dsl::PluginManifest* PluginCatalog::find(const std::string& name, std::string& error) {
  std::lock_guard lock(mu_);
  Entry* e = locate(name, error);
  return e ? e->manifest.get() : nullptr;
}

std::shared_ptr<ActionHandler> PluginCatalog::handler(const std::string& name, std::string& error) {
  std::lock_guard lock(mu_);
  Entry* e = locate(name, error);
  if (!e) return nullptr;
  if (e->handler) return e->handler;
  const dsl::PluginManifest& m = *e->manifest;
  switch (m.kind) {
    case dsl::PluginKind::Lua:
      e->handler = make_lua_plugin_handler(m, error);
      break;
    case dsl::PluginKind::Native:
      e->handler = make_native_plugin_handler(m, error);
      break;
    case dsl::PluginKind::Builtin:
      error = "built-in plugin '" + m.name + "' has no handler";
      break;
  }
  return e->handler;
}

std::vector<const dsl::PluginManifest*> PluginCatalog::all(std::vector<std::string>& problems) {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> names;  // name -> the first folder holding it ("" = built-in)
  for (const auto& [name, entry] : entries_) names.emplace(name, entry.manifest->dir);
  for (const std::string& dir : search_path_) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code fe;
      if (!name.empty() && name[0] != '.' && fs::is_regular_file(it->path() / "plugin.toml", fe))
        names.emplace(name, it->path().string());
    }
  }
  std::vector<const dsl::PluginManifest*> out;
  for (const auto& [name, folder] : names) {
    std::string error;
    if (!dsl::is_plugin_name(name)) {
      problems.push_back(display(folder) + ": not a plugin folder: '" + name + "' is not a valid plugin name (" +
                         dsl::kPluginNameRule + ")\n");
    } else if (Entry* e = locate(name, error)) {
      out.push_back(e->manifest.get());
    } else {
      problems.push_back(error);
    }
  }
  return out;
}

}  // namespace sluice::engine
