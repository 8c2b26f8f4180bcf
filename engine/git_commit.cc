#include "engine/git_commit.h"

#include <filesystem>
#include <fstream>
#include <system_error>

namespace sluice::engine {
namespace {

namespace fs = std::filesystem;

// The file's first line without its line end; "" if it cannot be read.
std::string first_line(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

bool is_object_id(const std::string& s) {
  if (s.size() != 40 && s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// `ref` (e.g. refs/heads/main) as a loose ref of the worktree's or the
// common git dir, else as a line of packed-refs; "" when it names nothing.
std::string resolve_ref(const fs::path& git_dir, const fs::path& common_dir, const std::string& ref) {
  if (ref.empty() || ref.find("..") != std::string::npos) return {};
  for (const fs::path& base : {git_dir, common_dir}) {
    std::string id = first_line(base / ref);
    if (is_object_id(id)) return id;
  }
  std::ifstream packed(common_dir / "packed-refs", std::ios::binary);
  for (std::string line; std::getline(packed, line);) {
    if (line.empty() || line[0] == '#' || line[0] == '^') continue;
    const size_t space = line.find(' ');
    if (space != std::string::npos && line.compare(space + 1, std::string::npos, ref) == 0) {
      std::string id = line.substr(0, space);
      return is_object_id(id) ? id : std::string();
    }
  }
  return {};
}

std::string head_commit(const fs::path& git_dir) {
  fs::path common_dir = git_dir;
  if (std::string common = first_line(git_dir / "commondir"); !common.empty())
    common_dir = fs::path(common).is_absolute() ? fs::path(common) : git_dir / common;
  std::string head = first_line(git_dir / "HEAD");
  // A symbolic ref may point at another one; git allows a few levels.
  for (int depth = 0; depth < 5 && head.rfind("ref: ", 0) == 0; ++depth) {
    const std::string ref = head.substr(5);
    std::string id = resolve_ref(git_dir, common_dir, ref);
    if (!id.empty()) return id;
    head = first_line(common_dir / ref);  // a symbolic ref other than HEAD
  }
  return is_object_id(head) ? head : std::string();
}

}  // namespace

std::string git_commit(const std::string& dir) {
  std::error_code ec;
  fs::path d = fs::absolute(dir, ec);
  if (ec) return {};
  for (;;) {
    const fs::path dot_git = d / ".git";
    if (fs::is_directory(dot_git, ec)) return head_commit(dot_git);
    if (fs::is_regular_file(dot_git, ec)) {  // a worktree or submodule: "gitdir: PATH"
      const std::string line = first_line(dot_git);
      if (line.rfind("gitdir: ", 0) != 0) return {};
      const fs::path target = line.substr(8);
      return head_commit(target.is_absolute() ? target : d / target);
    }
    if (!d.has_parent_path() || d.parent_path() == d) return {};
    d = d.parent_path();
  }
}

}  // namespace sluice::engine
