#include "registry/model_refs.h"

#include <filesystem>

namespace sluice::registry {

namespace fs = std::filesystem;

Result<std::string> model_version_path(const std::string& home, ArtifactStore& cas, const ModelVersion& v) {
  auto digest = Digest::parse(v.digest);
  if (!digest) return Error{"version " + std::to_string(v.version) + " of model '" + v.model + "': " + digest.error()};
  std::string name = v.filename;
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) name = "artifact";
  const fs::path dir = fs::path(home) / "models" / v.model / std::to_string(v.version);
  const fs::path dest = dir / name;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dest, ec))) return dest.string();
  if (!cas.exists(*digest))
    return Error{"the artifact of version " + std::to_string(v.version) + " of model '" + v.model + "' (" + v.digest +
                 ") is missing from " + cas.root()};
  fs::create_directories(dir, ec);
  if (ec) return Error{"cannot create " + dir.string() + ": " + ec.message()};
  auto made = cas.materialize(*digest, dest.string());
  // Another step or process may have materialised it first: that copy is whole
  // (materialize renames into place), so it serves as well.
  if (!made && !fs::exists(fs::symlink_status(dest, ec))) return Error{made.error()};
  return dest.string();
}

Result<std::string> resolve_model_ref(const std::string& home, const std::string& model, const std::string& ref,
                                      const std::string& field) {
  try {
    ModelRegistry registry(home + "/sluice.db");
    auto v = registry.resolve(model, ref);
    if (!v) return Error{v.error()};
    if (field == "version") return std::to_string(v->version);
    if (field == "digest") return v->digest;
    if (field != "path") return Error{"unknown model field '" + field + "': expected path, version or digest"};
    auto cas = ArtifactStore::open(home);
    if (!cas) return Error{cas.error()};
    return model_version_path(home, *cas, *v);
  } catch (const StoreError& e) {
    return Error{std::string("the model registry cannot be read: ") + e.what()};
  }
}

}  // namespace sluice::registry
