#pragma once
// Model versions as files: where a version's artifact is read from, and the
// `${models.NAME@ALIAS_OR_VERSION.FIELD}` references of workflows.
#include <string>

#include "registry/artifact_store.h"
#include "registry/model_registry.h"

namespace sluice::registry {

// The version's file or folder, under the name it was registered with, at
// <home>/models/<model>/<version>/<filename>: materialised once from the CAS
// (hard links, read-only) and reused afterwards. A file keeps its name (and so
// its extension, which loaders such as XGBoost's look at); a folder is a folder.
Result<std::string> model_version_path(const std::string& home, ArtifactStore& cas, const ModelVersion& v);

// Resolves one reference against the registry in <home>/sluice.db: `ref` is a
// version number, "latest" or an alias; `field` is "path" (model_version_path),
// "version" or "digest". Errors name what is missing ("no model 'x'", "model
// 'x' has no alias 'production' (aliases: staging)"); a store failure is an
// error too, never an exception.
Result<std::string> resolve_model_ref(const std::string& home, const std::string& model, const std::string& ref,
                                      const std::string& field);

}  // namespace sluice::registry
