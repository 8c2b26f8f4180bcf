// The `sluice` executable: the engine library plus this entry point.
#include <cstdio>
#include <exception>

#include "engine/cli.h"
#include "engine/exit_status.h"

int main(int argc, char** argv) {
  try {
    return sluice::engine::cli_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: internal error: %s\n", e.what());
    return sluice::engine::kExitInternal;
  }
}
