#include "engine/serve_catalog.h"

#include <algorithm>
#include <filesystem>

#include "engine/git_commit.h"
#include "registry/sha256.h"

namespace sluice::engine {

namespace fs = std::filesystem;

const ServedWorkflow* Catalog::find(const std::string& name) const {
  auto it = workflows.find(name);
  return it == workflows.end() ? nullptr : &it->second;
}

std::vector<std::string> Catalog::names() const {
  std::vector<std::string> out;
  for (const auto& [name, w] : workflows) out.push_back(name);
  return out;
}

std::shared_ptr<const Catalog> load_catalog(const std::string& dir) {
  auto cat = std::make_shared<Catalog>();
  std::vector<fs::path> files;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".toml" && e.is_regular_file(ec)) files.push_back(e.path());
  if (ec) cat->errors.push_back({dir, "cannot list the workflows folder: " + ec.message()});
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> commits;  // by folder: one git call each
  for (const fs::path& file : files) {
    const std::string path = fs::absolute(file).lexically_normal().string();
    dsl::Diagnostics diags;
    dsl::WorkflowPtr wf = dsl::load_workflow(path, diags);
    if (!wf) {
      cat->errors.push_back({path, diags.format_all()});
      continue;
    }
    if (const ServedWorkflow* first = cat->find(wf->name)) {
      cat->errors.push_back({path, path + ": error: workflow '" + wf->name + "' is also defined in " + first->path +
                                       "; this file is not served\n"});
      continue;
    }
    const std::string folder = file.parent_path().string();
    if (!commits.count(folder)) commits[folder] = git_commit(folder);
    std::string digest = registry::sha256_hex(wf->source);
    cat->workflows.emplace(wf->name, ServedWorkflow{wf, path, std::move(digest), commits[folder]});
  }
  return cat;
}

}  // namespace sluice::engine
