#pragma once
// Process exit codes of the `sluice` command (DESIGN.md, "The CLI").
namespace sluice::engine {

enum ExitStatus : int {
  kExitSuccess = 0,      // everything succeeded
  kExitRunFailed = 1,    // a run (or a step of it) failed
  kExitBadInput = 2,     // usage error or invalid workflow
  kExitInternal = 3,     // a broken invariant inside sluice
  kExitInterrupted = 130 // SIGINT/SIGTERM stopped a run
};

}  // namespace sluice::engine
