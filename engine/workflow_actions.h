#pragma once
// The built-in `workflow` plugin: one workflow starting another.
//   workflow.run      runs another workflow as a child run and waits for it;
//                     the step fails when the child run fails.
//   workflow.trigger  starts a run of another workflow — the feedback loop
//                     (a monitor triggering retraining). Under `sluice run` it
//                     is a child run the step waits for, whose outcome the
//                     step reports in its values without failing. In a run
//                     `sluice serve` started (ActionCall::served_workflows),
//                     it queues a run of a served workflow (trigger "child",
//                     parent = this run) and returns at once: values
//                     run_id and status "queued"; the server starts it.
// A child run is a `sluice run` process of this same binary on the same state
// folder, in its own process group: cancelling the step (fail-fast, Ctrl-C,
// timeout) terminates it, and it is recorded as its own run (trigger "child").
// See docs/plugins.md, "Built-in plugins".
#include <memory>

#include "dsl/plugin_manifest.h"
#include "engine/action.h"

namespace sluice::engine {

dsl::PluginManifest workflow_plugin_manifest();
std::shared_ptr<ActionHandler> make_workflow_handler();

}  // namespace sluice::engine
