#pragma once
// The handlers of API v1 (docs/api.md, docs/openapi.yaml). Each takes
// the request, checks what only it knows (the workflow a token is limited
// to, the body), and answers JSON or throws ApiError.
#include <string>
#include <vector>

#include "dsl/params.h"
#include "engine/serve_catalog.h"
#include "engine/serve_http.h"
#include "engine/queued_run.h"
#include "registry/store.h"

namespace sluice::engine {

void get_healthz(Call& call);
void get_metrics(Call& call);
void list_workflows(Call& call);
void get_workflow(Call& call);
void trigger_run(Call& call);
void list_runs(Call& call);
void get_run(Call& call);
void get_step_log(Call& call);
void cancel_run(Call& call);
void list_schedules(Call& call);
void get_schedule(Call& call);

// The workflow `name` from the served catalog, or 404 naming the closest one.
const ServedWorkflow& find_workflow(const Catalog& catalog, const std::string& name);

// "/api/v1/runs/ID" under `base`.
std::string run_url(const std::string& base, const std::string& run_id);

}  // namespace sluice::engine
