#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/shell_quote.h"

using namespace sluice;
using namespace sluice::engine;
namespace fs = std::filesystem;

namespace {

dsl::Template parse(const std::string& text) {
  dsl::Diagnostics diags;
  dsl::Template t = dsl::parse_template(text, diags, [](size_t) { return dsl::SourcePos{}; });
  INFO(diags.format_all());
  REQUIRE_FALSE(diags.has_errors());
  return t;
}

// Renders `text` with every reference standing for `value`.
bool render(const std::string& text, const std::string& value, std::string& out, std::string& error) {
  return render_command(
      parse(text), [&](const dsl::Ref&, std::string& v, std::string&) { v = value; return true; }, out, error);
}

// A scratch directory holding one file, a.txt (so an unquoted * would expand).
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sluice-quote-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()));
    path = tmpl;
    std::ofstream(path / "a.txt") << "a\n";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Runs `/bin/sh -c command` in `cwd`; returns its stdout, fails the test unless it exits 0.
std::string run_sh(const std::string& command, const fs::path& cwd) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  INFO(command);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return out;
}

const std::vector<std::string> kNasty = {
    "$(touch x); rm -rf",
    "it's",
    "'; touch x; '",
    "a'b'c''",
    "say \"hi\"",
    "\"; touch x; \"",
    "back\\slash\\",
    "\\'",
    "\\",
    "`touch x`",
    "line1\nline2\n",
    "\ntouch x #",
    "$HOME",
    "${HOME}",
    "*",
    "a  b\tc",
    "",
    " ",
    "}$(touch x)",
    ")$(touch x)",
    "-n",
    "#not a comment",
    "<<EOF\ntouch x\nEOF",
    "caf\xc3\xa9 \x01\x7f",
};

// Templates in which `${params.x}` must print exactly the value, wrapped as
// prefix + value + suffix.
struct Context {
  const char* name;
  const char* command;
  const char* prefix;
  const char* suffix;
};
const Context kContexts[] = {
    {"unquoted", "printf '%s' ${params.x}", "", ""},
    {"single quotes", "printf '%s' '${params.x}'", "", ""},
    {"double quotes", "printf '%s' \"${params.x}\"", "", ""},
    {"inside words", "printf '%s' pre${params.x}'-'\"${params.x}\"post", "pre", "post"},
    {"$() unquoted", "printf '%s' \"$(printf '%s|' ${params.x})\"", "", "|"},
    {"$() in single quotes", "printf '%s' \"$(printf '%s|' '${params.x}')\"", "", "|"},
    {"$() in double quotes", "printf '%s' \"$(printf '%s|' \"${params.x}\")\"", "", "|"},
    {"backquotes", "printf '%s' \"`printf '%s|' ${params.x}`\"", "", "|"},
    {"backquotes, single", "printf '%s' \"`printf '%s|' '${params.x}'`\"", "", "|"},
    {"backquotes in \"...\", double", "printf '%s' \"`printf '%s|' \\\"${params.x}\\\"`\"", "", "|"},
    {"backquotes, double", "v=`printf '%s|' \"${params.x}\"`; printf '%s' \"$v\"", "", "|"},
    {"nested backquotes", "v=`printf '%s' \"\\`printf '%s|' ${params.x}\\`\"`; printf '%s' \"$v\"", "", "|"},
    {"case in $()", "printf '%s' \"$(case a in a) printf '%s|' ${params.x};; esac)\"", "", "|"},
    {"after a pipe and ;", "true; printf 'z' | cat && printf '%s' ${params.x}", "z", ""},
};

}  // namespace

TEST_CASE("shell_quote: single-quoted words") {
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("abc") == "'abc'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("$(x) `y` \"z\" \\") == "'$(x) `y` \"z\" \\'");
}

TEST_CASE("shell_quote: values print literally in every quoting context") {
  TempDir dir;
  for (const Context& ctx : kContexts) {
    for (const std::string& value : kNasty) {
      INFO(ctx.name << " | value: [" << value << "]");
      std::string command, error;
      REQUIRE(render(ctx.command, value, command, error));
      INFO("command: " << command);
      std::string got = run_sh(command, dir.path);
      if (std::string(ctx.name) == "inside words") {
        CHECK(got == "pre" + value + "-" + value + "post");
      } else {
        CHECK(got == ctx.prefix + value + ctx.suffix);
      }
      CHECK_FALSE(fs::exists(dir.path / "x"));
    }
  }
}

TEST_CASE("shell_quote: a reference in a comment stays in the comment") {
  TempDir dir;
  for (const std::string& value : kNasty) {
    INFO("value: [" << value << "]");
    std::string command, error;
    REQUIRE(render("printf ok # note ${params.x}\nprintf ' done'", value, command, error));
    INFO("command: " << command);
    CHECK(run_sh(command, dir.path) == "ok done");
    CHECK_FALSE(fs::exists(dir.path / "x"));
  }
  // A '#' inside a word or quotes starts no comment.
  std::string command, error;
  REQUIRE(render("printf '%s' a#${params.x} '#'${params.x}", "$(touch x)", command, error));
  CHECK(run_sh(command, dir.path) == "a#$(touch x)#$(touch x)");
  CHECK_FALSE(fs::exists(dir.path / "x"));
}

TEST_CASE("shell_quote: contexts that cannot be quoted fail the render") {
  std::string out, error;
  CHECK_FALSE(render("cat <<EOF\n${params.x}\nEOF", "v", out, error));
  CHECK(error == "${params.x} stands in a here-document, where it cannot be quoted safely; pass it as an argument or in `env`");
  CHECK_FALSE(render("cat <<-'END'\n\t${params.x}\nEND", "v", out, error));
  CHECK_FALSE(render("cat << ${params.x}", "v", out, error));
  CHECK(error == "${params.x} stands in a here-document delimiter, where it cannot be quoted safely");
  CHECK_FALSE(render("echo \\${params.x}", "v", out, error));
  CHECK(error == "${params.x} stands right after a backslash; write $$ for a literal $ or remove the backslash");
  CHECK_FALSE(render("echo \"\\${params.x}\"", "v", out, error));
  CHECK_FALSE(render("echo `echo \\${params.x}`", "v", out, error));
  CHECK_FALSE(render("echo $$${params.x}", "v", out, error));
  CHECK(error == "${params.x} stands right after a '$', which the shell would join with the value; write $$$$ for a literal $");
  CHECK_FALSE(render("echo \"$$${params.x}\"", "v", out, error));
  CHECK_FALSE(render("echo \"$${OUT:-${params.x}}\"", "v", out, error));
  CHECK(error == "${params.x} stands inside a shell ${...} expansion, where shells differ in how they read quotes; "
                 "assign it to a shell variable first");
  CHECK_FALSE(render("echo $${OUT:-'}'${params.x}}", "v", out, error));
  CHECK_FALSE(render("echo ${params.x}", std::string("a\0b", 3), out, error));
  CHECK(error == "${params.x}: the value contains a NUL byte, which cannot be part of a command");
}

TEST_CASE("shell_quote: what follows a here-document or a quote is lexed again") {
  TempDir dir;
  std::string command, error;
  // After the body ends, references are quoted as usual.
  REQUIRE(render("cat <<EOF\nbody $$HOME\nEOF\nprintf '%s' ${params.x}", "$(touch x)", command, error));
  CHECK(run_sh(command, dir.path).substr(0, 5) == "body ");
  CHECK(run_sh(command, dir.path).find("$(touch x)") != std::string::npos);
  // In an unquoted here-document a trailing backslash joins lines before the
  // delimiter is looked for (a regression found by fuzzing).
  REQUIRE(render("cat <<E\n\\\nE\nprintf '%s' ${params.x}", "$(touch x)", command, error));
  CHECK(run_sh(command, dir.path) == "$(touch x)");
  CHECK_FALSE(render("cat <<E\na\\\nE\nprintf '%s' ${params.x}\nE", "v", command, error));
  REQUIRE(render("cat <<'E'\na\\\nE\nprintf '%s' ${params.x}", "$(touch x)", command, error));
  CHECK(run_sh(command, dir.path) == "a\\\n$(touch x)");
  // `<<<`, `\<`, quoted `<<` and `a<<b` inside quotes are not here-documents.
  REQUIRE(render("printf '%s|' '<<x' \"<<y\" \\<\\< ${params.x}", "v", command, error));
  CHECK(run_sh(command, dir.path) == "<<x|<<y|<<|v|");
  // `\'` outside quotes is a literal quote, so the reference is unquoted context.
  REQUIRE(render("printf '%s' \\'${params.x}\\'", "a b'c", command, error));
  CHECK(run_sh(command, dir.path) == "'a b'c'");
  CHECK_FALSE(fs::exists(dir.path / "x"));
}

TEST_CASE("shell_quote: shell ${...} expansions are skipped whole") {
  TempDir dir;
  std::string command, error;
  // '#' in ${...} starts no comment, and its '}' (not one in quotes) ends it.
  REQUIRE(render("printf '%s|' $${NOPE:- #}${params.x} \"$${NOPE:-\\}}\"${params.x} $${NOPE:-'}'}${params.x}",
                 "$(touch x)", command, error));
  CHECK(run_sh(command, dir.path) == "#$(touch x)|}$(touch x)|}$(touch x)|");
  // A $(...) inside one is a fresh context.
  REQUIRE(render("printf '%s' \"$${NOPE:-$(printf '%s' ${params.x})}\"", "a'b\"c", command, error));
  CHECK(run_sh(command, dir.path) == "a'b\"c");
  CHECK_FALSE(fs::exists(dir.path / "x"));
}

TEST_CASE("shell_quote: arithmetic expansion takes integers only") {
  TempDir dir;
  std::string command, error;
  REQUIRE(render("printf '%s' $(( ${params.x} * 2 + 1 ))", "-21", command, error));
  CHECK(command == "printf '%s' $(( -21 * 2 + 1 ))");
  CHECK(run_sh(command, dir.path) == "-41");
  REQUIRE(render("printf '%s' \"$((${params.x}+1))\" $( (printf '%s' ${params.x}) )", "7", command, error));
  CHECK(run_sh(command, dir.path) == "87");
  for (const char* bad : {"", "1.5", "x", "HOME", "a[$(touch x)]", "1+1", " 1", "--1"}) {
    INFO(bad);
    CHECK_FALSE(render("echo $(( ${params.x} ))", bad, command, error));
    CHECK(error == std::string("${params.x} stands in an arithmetic expansion $((...)), where only an integer can be "
                               "substituted, not '") + bad + "'");
  }
}

TEST_CASE("shell_quote: a line continuation does not start a word") {
  // `\` + newline then `#` is a comment for the shell (a regression found by fuzzing).
  TempDir dir;
  std::string command, error;
  REQUIRE(render("printf ok \\\n# note ${params.x}\nprintf ' done'", "E\ntouch x\nE", command, error));
  CHECK(run_sh(command, dir.path) == "ok done");
  CHECK_FALSE(fs::exists(dir.path / "x"));
}

TEST_CASE("shell_quote: bash's $'...' strings") {
  // dash reads $'a' as $ and 'a'; bash as an ANSI-C string. A reference inside
  // one fails; after one it is fine unless the string held \', where the two
  // shells end it at different quotes (a regression found by fuzzing).
  TempDir dir;
  std::string command, error;
  CHECK_FALSE(render("printf '%s' $$'${params.x}'", "v", command, error));
  CHECK(error == "${params.x} stands in a $'...' string, which only some shells have; use '...' or \"...\" instead");
  REQUIRE(render("printf '%s|' $$'a\\tb' ${params.x}", "$(touch x)", command, error));
  CHECK(run_sh(command, dir.path).ends_with("|$(touch x)|"));  // dash prints $a\tb first, bash a<tab>b
  CHECK_FALSE(render("printf '%s' $$'\\'' ${params.x}", "v", command, error));
  CHECK(error == "${params.x} follows a $'...' string holding \\', which shells end at different quotes; "
                 "avoid \\' in $'...' or pass the value in `env`");
}

TEST_CASE("shell_quote: a failed lookup fails the render") {
  std::string out, error;
  auto lookup = [](const dsl::Ref& ref, std::string&, std::string& err) {
    err = "unknown param '" + ref.key + "'";
    return false;
  };
  CHECK_FALSE(render_command(parse("echo ${params.nope}"), lookup, out, error));
  CHECK(error == "unknown param 'nope'");
}
