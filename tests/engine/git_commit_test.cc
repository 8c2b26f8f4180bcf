// git_commit reads the commit of the repository holding a folder from git's
// own files: checked against repositories laid out by hand (every layout it
// reads) and against `git rev-parse HEAD` in real repositories.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/git_commit.h"
#include "support/temp_dir.h"

using sluice::engine::git_commit;
using sluice::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

const std::string kA(40, 'a'), kB = "0123456789abcdef0123456789abcdef01234567", kC(40, 'c');

void put(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// What `sh -c command` printed, its last line end dropped.
std::string output_of(const std::string& command) {
  std::FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TEST_CASE("git_commit reads HEAD through loose refs, packed-refs and worktree links") {
  ScratchDir t;
  const std::string repo = t / "repo";
  fs::create_directories(repo + "/flows/deep");
  // A branch as a loose ref, found from a folder two levels down.
  put(repo + "/.git/HEAD", "ref: refs/heads/main\n");
  put(repo + "/.git/refs/heads/main", kA + "\n");
  CHECK(git_commit(repo) == kA);
  CHECK(git_commit(repo + "/flows/deep") == kA);
  // Only in packed-refs (after `git pack-refs`), beside other refs and a peeled tag line.
  fs::remove(repo + "/.git/refs/heads/main");
  put(repo + "/.git/packed-refs", "# pack-refs with: peeled fully-peeled sorted\n" + kC + " refs/heads/mainline\n" + kB +
                                      " refs/heads/main\n" + kA + " refs/tags/v1\n^" + kC + "\n");
  CHECK(git_commit(repo + "/flows") == kB);
  // A loose ref wins over a stale packed one.
  put(repo + "/.git/refs/heads/main", kC + "\n");
  CHECK(git_commit(repo) == kC);
  // Detached HEAD.
  put(repo + "/.git/HEAD", kA + "\n");
  CHECK(git_commit(repo) == kA);
  // A branch with no commit yet, and a HEAD that is not a commit.
  put(repo + "/.git/HEAD", "ref: refs/heads/new\n");
  CHECK(git_commit(repo) == "");
  put(repo + "/.git/HEAD", "not a commit\n");
  CHECK(git_commit(repo) == "");

  // A worktree: `.git` is a file naming its git dir, whose commondir leads
  // to the main repository's refs; its own HEAD names its branch.
  put(repo + "/.git/HEAD", "ref: refs/heads/main\n");
  put(repo + "/.git/worktrees/wt/HEAD", "ref: refs/heads/feature\n");
  put(repo + "/.git/worktrees/wt/commondir", "../..\n");
  put(repo + "/.git/refs/heads/feature", kB + "\n");
  put(t / "wt/.git", "gitdir: " + repo + "/.git/worktrees/wt\n");
  fs::create_directories(t / "wt/sub");
  CHECK(git_commit(t / "wt/sub") == kB);
  CHECK(git_commit(repo) == kC);

  // Outside any repository, and a `.git` file that is not a link.
  fs::create_directories(t / "plain");
  CHECK(git_commit(t / "plain") == "");
  put(t / "odd/.git", "garbage\n");
  CHECK(git_commit(t / "odd") == "");
}

TEST_CASE("git_commit agrees with git rev-parse HEAD in real repositories") {
  if (std::system("git --version >/dev/null 2>&1") != 0) {
    WARN("git is not installed: only the hand-made layouts were checked");
    return;
  }
  ScratchDir t;
  const std::string repo = t / "repo";
  const std::string git = "git -C '" + repo + "' -c user.name=t -c user.email=t@t ";
  REQUIRE(std::system(("git init -q -b main '" + repo + "' >/dev/null 2>&1").c_str()) == 0);
  CHECK(git_commit(repo) == "");  // no commit yet
  put(repo + "/wf.toml", "name = \"wf\"\n");
  REQUIRE(std::system((git + "add wf.toml && " + git + "commit -q -m one").c_str()) == 0);
  const std::string first = output_of(git + "rev-parse HEAD");
  REQUIRE(first.size() == 40);
  CHECK(git_commit(repo) == first);
  put(repo + "/wf.toml", "name = \"wf2\"\n");
  REQUIRE(std::system((git + "commit -q -am two && " + git + "pack-refs --all").c_str()) == 0);
  const std::string second = output_of(git + "rev-parse HEAD");
  CHECK(second != first);
  CHECK(git_commit(repo) == second);  // from packed-refs
  REQUIRE(std::system((git + "worktree add -q '" + (t / "wt") + "' " + first + " >/dev/null 2>&1").c_str()) == 0);
  CHECK(git_commit(t / "wt") == first);  // a detached worktree
  CHECK(git_commit(repo) == second);
}
