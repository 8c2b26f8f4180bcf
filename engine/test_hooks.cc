#include "engine/test_hooks.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace sluice::engine {

bool test_kill_point_set(const char* point) {
  const char* at = std::getenv("SLUICE_TEST_KILL_AT");
  return at && std::strcmp(at, point) == 0;
}

void test_kill_point(const char* point) {
  if (test_kill_point_set(point)) ::kill(::getpid(), SIGKILL);
}

}  // namespace sluice::engine
