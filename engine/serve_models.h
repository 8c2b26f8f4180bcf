#pragma once
// The model registry over HTTP (docs/api.md, "Models"): list models,
// show one with its versions and alias history, and move an alias. Models
// are not any one workflow's, so these need a token that is not limited to
// a workflow: read scope to look, admin scope to move an alias.
#include "engine/serve_http.h"

namespace sluice::engine {

void list_models(Call& call);      // GET /api/v1/models
void get_model(Call& call);        // GET /api/v1/models/{name}
void put_model_alias(Call& call);  // PUT /api/v1/models/{name}/aliases/{alias}

}  // namespace sluice::engine
