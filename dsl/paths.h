#pragma once
// The one check for relative paths that must stay inside a folder: declared
// outputs and inputs (dsl/), artifact paths, tree listings and work-dir
// places (registry/, engine/). Lexical only: symlinks are the caller's to
// resolve (see registry/artifact_store.h, put_file_at).
#include <string>
#include <string_view>

namespace sluice::dsl {

// Why `path` is not a safe relative path, or "" when it is: empty, a NUL
// byte, absolute, or a '..' component. The message quotes the path.
std::string unsafe_relative_path(std::string_view path);

}  // namespace sluice::dsl
