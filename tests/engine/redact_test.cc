// engine/redact.h: secrets replaced by *** in text and in files, including a
// secret that straddles the file reader's 64 KiB chunks.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "engine/redact.h"
#include "support/temp_dir.h"

using sluice::engine::Redactor;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("redact: every occurrence of every secret becomes ***, the longest first") {
  Redactor r({"hunter2", "hunter2-long", "", "tok"});
  CHECK(r.apply("pw=hunter2 again hunter2-long and tok/tok") == "pw=*** again *** and ***/***");
  CHECK(r.apply("nothing here") == "nothing here");
  std::string s = "xhunter2x";
  CHECK(r.apply_in_place(s));
  CHECK(s == "x***x");
  std::string clean = "clean";
  CHECK(!r.apply_in_place(clean));
  CHECK(Redactor({""}).empty());
}

TEST_CASE("redact: a multi-line secret is also redacted line by line") {
  Redactor r({"-----BEGIN-----\r\nAAAA\n-----END-----"});
  CHECK(r.apply("key: -----BEGIN-----\r\nAAAA\n-----END-----.") == "key: ***.");
  CHECK(r.apply("AAAA") == "***");  // as a streamed line arrives
}

TEST_CASE("redact: secrets come from SLUICE_SECRET_ variables only") {
  std::string a = "SLUICE_SECRET_TOKEN=s3cr3t", b = "OTHER=visible", c = "SLUICE_SECRET_EMPTY=";
  char* env[] = {a.data(), b.data(), c.data(), nullptr};
  Redactor r = Redactor::from_environment(env);
  CHECK(r.apply("s3cr3t visible") == "*** visible");
}

TEST_CASE("redact: a file is rewritten in place, secrets across chunk boundaries included") {
  sluice::test::ScratchDir dir;
  const std::string path = dir / "attempt-1.log";
  const std::string secret = "0123456789abcdef-secret";
  std::string text(65536 - 5, 'x');  // the secret starts 5 bytes before the first chunk ends
  text += secret + "\n" + std::string(100000, 'y') + secret;
  std::ofstream(path, std::ios::binary) << text;
  Redactor r({secret});
  CHECK(r.redact_file(path).empty());
  CHECK(slurp(path) == std::string(65536 - 5, 'x') + "***\n" + std::string(100000, 'y') + "***");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);

  // A file without secrets is left alone (same inode), a missing one is fine.
  const std::string plain = dir / "plain.log";
  std::ofstream(plain) << "hello\n";
  struct stat before {}, after {};
  REQUIRE(::stat(plain.c_str(), &before) == 0);
  CHECK(r.redact_file(plain).empty());
  REQUIRE(::stat(plain.c_str(), &after) == 0);
  CHECK(before.st_ino == after.st_ino);
  CHECK(r.redact_file(dir / "missing.log").empty());
}
