#pragma once
// Fault points for the crash tests. $SLUICE_TEST_KILL_AT names one point; the
// process that reaches it SIGKILLs itself there, as a crash or kill -9 at
// that moment would. Unset (always, outside the test suite): nothing happens.
//   before-fire, after-fire      sluice serve, around committing a schedule's fire
//   after-run-started            sluice run, once the run's creation is committed
//   before-run-finished          sluice run, once every step's result is
//                                committed, before the run's end is
namespace sluice::engine {

// Whether $SLUICE_TEST_KILL_AT names `point`.
bool test_kill_point_set(const char* point);
// SIGKILLs this process when $SLUICE_TEST_KILL_AT names `point`.
void test_kill_point(const char* point);

}  // namespace sluice::engine
