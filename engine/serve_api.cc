#include "engine/serve_api.h"

#include <httplib.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "dsl/suggest.h"
#include "dsl/units.h"
#include "engine/executor.h"
#include "engine/params_json.h"
#include "engine/run_recorder.h"
#include "engine/serve.h"
#include "registry/sha256.h"
#include "sluice/version.h"

namespace sluice::engine {

namespace reg = sluice::registry;
using nlohmann::json;

namespace {

json opt_time(const std::optional<int64_t>& ms) { return ms ? json(format_utc(*ms)) : json(); }
json opt_text(const std::string& s) { return s.empty() ? json() : json(s); }

json parse_object(const std::string& text) {
  json j = json::parse(text.empty() ? "{}" : text, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string url_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

json run_json(const reg::RunRow& r, const std::string& base) {
  return {{"id", r.id},
          {"workflow", r.workflow_name},
          {"workflow_digest", r.workflow_digest},
          {"status", reg::to_string(r.status)},
          {"trigger", reg::to_string(r.trigger)},
          {"parent_run", opt_text(r.parent_run)},
          {"params", parse_object(r.params_json)},
          {"created_at", format_utc(r.created_at)},
          {"started_at", opt_time(r.started_at)},
          {"finished_at", opt_time(r.finished_at)},
          {"error", opt_text(r.error)},
          {"sluice_version", r.sluice_version},
          {"git_commit", opt_text(r.git_commit)},
          {"no_cache", r.no_cache},
          {"options", parse_object(r.options_json)},
          {"url", run_url(base, r.id)}};
}

const char* type_text(const dsl::Param& p) {
  return p.type == dsl::ValueType::Array ? "array" : dsl::type_name(p.type);
}

json workflow_json(const ServedWorkflow& w, const std::string& base, const std::vector<ScheduleStatus>& status) {
  const dsl::Workflow& wf = *w.wf;
  json params = json::array();
  for (const dsl::Param& p : wf.params) {
    json item = {{"name", p.name}, {"type", type_text(p)}, {"default", json::parse(p.default_value.to_json())}};
    if (p.type == dsl::ValueType::Array) item["element"] = dsl::type_name(p.element);
    params.push_back(std::move(item));
  }
  json steps = json::array();
  for (const dsl::Step& s : wf.steps) steps.push_back(s.name);
  json schedule;  // null
  if (wf.schedule) {
    const dsl::Schedule& s = *wf.schedule;
    const char* catchup[] = {"none", "latest", "all"};
    const char* overlap[] = {"skip", "queue", "cancel"};
    schedule = {{"cron", s.cron},
                {"timezone", s.timezone},
                {"catchup", catchup[static_cast<int>(s.catchup)]},
                {"catchup_window", dsl::format_duration(s.catchup_window)},
                {"overlap", overlap[static_cast<int>(s.overlap)]},
                {"on_dst_gap", s.on_dst_gap == dsl::DstGap::Shift ? "shift" : "skip"},
                {"on_dst_repeat", s.on_dst_repeat == dsl::DstRepeat::First ? "first"
                                  : s.on_dst_repeat == dsl::DstRepeat::Last ? "last"
                                                                            : "both"},
                {"deadline", s.deadline ? json(dsl::format_duration(*s.deadline)) : json()},
                {"next_fire", nullptr}};
    for (const ScheduleStatus& st : status)
      if (st.workflow == wf.name && st.next_fire) schedule["next_fire"] = format_utc(*st.next_fire);
  }
  json triggers = json::array();
  for (const dsl::EventTrigger& t : wf.triggers)
    triggers.push_back({{"event", t.event == dsl::TriggerEvent::Push ? "push" : "release"},
                        {"repository", opt_text(t.repository)},
                        {"branches", t.branches},
                        {"tags", t.tags},
                        {"actions", t.actions}});
  return {{"name", wf.name},
          {"description", wf.description},
          {"path", w.path},
          {"digest", w.digest},
          {"params", params},
          {"steps", steps},
          {"schedule", schedule},
          {"triggers", triggers},
          {"url", base + "/api/v1/workflows/" + wf.name},
          {"runs_url", base + "/api/v1/workflows/" + wf.name + "/runs"}};
}

}  // namespace

std::string run_url(const std::string& base, const std::string& run_id) { return base + "/api/v1/runs/" + run_id; }

const ServedWorkflow& find_workflow(const Catalog& catalog, const std::string& name) {
  if (const ServedWorkflow* w = catalog.find(name)) return *w;
  throw ApiError{404, "not_found", "no workflow '" + name + "' is served here" + dsl::did_you_mean(name, catalog.names()), 0};
}

void get_healthz(Call& call) {
  const bool draining = call.ctx.draining.load();
  call.json(draining ? 503 : 200, {{"status", draining ? "draining" : "ok"},
                                   {"version", SLUICE_VERSION},
                                   {"workflows", call.ctx.catalog()->workflows.size()},
                                   {"queued", call.ctx.queue.queued()},
                                   {"running", call.ctx.queue.active()}});
}

void get_metrics(Call& call) {
  call.require(reg::TokenScope::Read, "");
  call.res.status = 200;
  call.res.set_content(render_metrics(call.ctx), "text/plain; version=0.0.4; charset=utf-8");
}

void list_workflows(Call& call) {
  auto cat = call.ctx.catalog();
  const auto status = call.ctx.scheduler.status();
  json list = json::array();
  for (const auto& [name, w] : cat->workflows)
    if (call.caller.workflow.empty() || call.caller.workflow == name) list.push_back(workflow_json(w, call.base_url(), status));
  json errors = json::array();
  if (call.caller.workflow.empty())
    for (const LoadError& e : cat->errors) errors.push_back({{"path", e.path}, {"message", e.message}});
  call.json(200, {{"workflows", list}, {"errors", errors}});
}

void get_workflow(Call& call) {
  const std::string name = call.param(1);
  call.require(reg::TokenScope::Read, name);
  auto cat = call.ctx.catalog();
  call.json(200, workflow_json(find_workflow(*cat, name), call.base_url(), call.ctx.scheduler.status()));
}

void trigger_run(Call& call) {
  const std::string name = call.param(1);
  call.require(reg::TokenScope::Trigger, name);
  auto cat = call.ctx.catalog();
  const ServedWorkflow& w = find_workflow(*cat, name);
  json body = json::object();
  if (!call.body.empty()) {
    body = json::parse(call.body, nullptr, false);
    if (body.is_discarded()) throw ApiError{400, "bad_request", "the request body is not valid JSON", 0};
    if (!body.is_object())
      throw ApiError{400, "bad_request", "the request body must be a JSON object such as {\"params\": {}}", 0};
  }
  for (const auto& [key, value] : body.items())
    if (key != "params")
      throw ApiError{422, "invalid_request", "unknown field '" + key + "' in the request body: expected 'params'", 0};
  dsl::ParamValues params;
  std::string error;
  if (!params_from_json(*w.wf, body.value("params", json::object()), params, error))
    throw ApiError{422, "invalid_params", error, 0};

  const std::string key = call.req.get_header_value("Idempotency-Key");
  if (call.req.has_header("Idempotency-Key") &&
      (key.empty() || key.size() > 255 ||
       !std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })))
    throw ApiError{400, "bad_request", "Idempotency-Key must be 1 to 255 printable ASCII characters", 0};

  auto respond = [&](const std::string& run_id) {
    json out = {{"run_id", run_id}, {"status", "queued"}, {"url", run_url(call.base_url(), run_id)}};
    return out;
  };
  const int64_t now = reg::now_ms();
  const int64_t clock_now = call.ctx.clock->now_ms();  // keys expire on the server's clock
  if (key.empty()) {
    const std::string run_id = new_run_id();
    call.ctx.writer.apply(queued_run_writes(w, params, reg::Trigger::Api, run_id, now));
    call.ctx.queue.notify();
    call.res.set_header("Location", run_url(call.base_url(), run_id));
    call.json(202, respond(run_id));
    return;
  }
  // Same key and same request: the first response again, and one run. The
  // request is its workflow and its body as parsed (so whitespace and key
  // order do not matter).
  const std::string request_hash = reg::sha256_hex("POST " + name + "\n" + body.dump());
  std::lock_guard<std::mutex> turn(call.ctx.key_lock(call.caller.token_id + "\n" + key));
  std::optional<reg::IdempotencyRow> seen;
  {
    auto store = call.ctx.pool.lease();
    seen = store->idempotency_key(call.caller.token_id, key);
  }
  if (seen && seen->created_at < clock_now - kIdempotencyKeyTtlMs) {
    // Older than a key is remembered (the hourly sweep has not come yet).
    call.ctx.writer.apply({reg::ExpireIdempotencyKeys{.before = clock_now - kIdempotencyKeyTtlMs}});
    seen.reset();
  }
  if (seen) {
    if (seen->request_hash != request_hash)
      throw ApiError{422, "idempotency_key_reused",
                     "Idempotency-Key '" + key + "' was already used with a different request", 0};
    call.res.set_header("Idempotent-Replayed", "true");
    call.res.status = seen->status;
    call.res.set_content(seen->response, "application/json");
    return;
  }
  const std::string run_id = new_run_id();
  const json out = respond(run_id);
  std::vector<reg::Write> writes = queued_run_writes(w, params, reg::Trigger::Api, run_id, now);
  writes.push_back(reg::PutIdempotencyKey{.token_id = call.caller.token_id, .key = key, .request_hash = request_hash,
                                          .status = 202, .response = out.dump() + "\n", .at = clock_now});
  call.ctx.writer.apply(std::move(writes));
  call.ctx.queue.notify();
  call.res.set_header("Location", run_url(call.base_url(), run_id));
  call.json(202, out);
}

void list_runs(Call& call) {
  reg::RunFilter filter;
  filter.workflow = call.req.get_param_value("workflow");
  if (!call.caller.workflow.empty()) {
    if (!filter.workflow.empty() && filter.workflow != call.caller.workflow) call.require(reg::TokenScope::Read, filter.workflow);
    filter.workflow = call.caller.workflow;
  }
  if (call.req.has_param("status")) {
    const std::string s = call.req.get_param_value("status");
    filter.status = reg::parse_run_status(s);
    if (!filter.status)
      throw ApiError{400, "bad_request",
                     "unknown status '" + s + "': use queued, running, succeeded, failed or cancelled", 0};
  }
  filter.limit = call.int_query("limit", 50, 1, 500);
  filter.cursor = call.req.get_param_value("cursor");
  reg::RunPage page;
  {
    auto store = call.ctx.pool.lease();
    page = store->list_runs(filter);
  }
  json runs = json::array();
  for (const reg::RunRow& r : page.runs) runs.push_back(run_json(r, call.base_url()));
  call.json(200, {{"runs", runs}, {"next_cursor", opt_text(page.next_cursor)}});
}

void get_run(Call& call) {
  const std::string id = call.param(1);
  auto store = call.ctx.pool.lease();
  auto run = store->run(id);
  if (!run) throw ApiError{404, "not_found", "no run '" + id + "'", 0};
  call.require(reg::TokenScope::Read, run->workflow_name);
  json out = run_json(*run, call.base_url());
  json steps = json::array();
  for (const reg::StepRow& s : store->steps(id)) {
    json values = json::object();
    for (const reg::ValueRow& v : store->values(id, s.node)) values[v.key] = v.value;
    json metrics = json::array();
    for (const reg::MetricRow& m : store->metrics(id, s.node))
      metrics.push_back({{"name", m.name}, {"value", std::isnan(m.value) ? json() : json(m.value)},
                         {"step", m.step ? json(*m.step) : json()}});
    json outputs = json::array();
    for (const reg::OutputRow& o : store->outputs(id, s.node))
      outputs.push_back({{"name", o.name}, {"digest", o.digest}, {"path", o.path}});
    steps.push_back({{"node", s.node},
                     {"step", s.step},
                     {"matrix", parse_object(s.matrix_json)},
                     {"status", reg::to_string(s.status)},
                     {"attempts", s.attempts},
                     {"started_at", opt_time(s.started_at)},
                     {"finished_at", opt_time(s.finished_at)},
                     {"error", opt_text(s.error)},
                     {"skip_reason", opt_text(s.skip_reason)},
                     {"values", values},
                     {"metrics", metrics},
                     {"outputs", outputs},
                     {"log_url", run_url(call.base_url(), id) + "/steps/" + url_encode(s.node) + "/log"}});
  }
  out["steps"] = steps;
  call.json(200, out);
}

void cancel_run(Call& call) {
  const std::string id = call.param(1);
  {
    auto store = call.ctx.pool.lease();
    auto run = store->run(id);
    if (!run) throw ApiError{404, "not_found", "no run '" + id + "'", 0};
    call.require(reg::TokenScope::Trigger, run->workflow_name);
  }
  auto result = call.ctx.queue.cancel(id);
  if (auto* e = std::get_if<ApiError>(&result)) throw *e;
  const std::string state = std::get<std::string>(result);
  call.json(state == "cancelled" ? 200 : 202,
            {{"run_id", id}, {"status", state == "cancelled" ? "cancelled" : "running"}, {"cancel", state},
             {"url", run_url(call.base_url(), id)}});
}

namespace {

json schedule_json(const reg::ScheduleRow& row, const Catalog& cat, const std::vector<ScheduleStatus>& status) {
  const ServedWorkflow* w = cat.find(row.workflow);
  json out = {{"workflow", row.workflow},
              {"cron", row.cron},
              {"timezone", row.timezone},
              {"on_dst_gap", row.on_dst_gap},
              {"on_dst_repeat", row.on_dst_repeat},
              {"active", w && w->wf->schedule},
              {"watermark", format_utc(row.watermark)},
              {"last_fire", opt_time(row.last_fire)},
              {"last_run", opt_text(row.last_run)},
              {"next_fire", nullptr},
              {"checked_at", nullptr},
              {"fires", row.fires},
              {"missed", row.missed},
              {"deadline_misses", row.deadline_misses}};
  for (const ScheduleStatus& st : status)
    if (st.workflow == row.workflow) {
      out["next_fire"] = opt_time(st.next_fire);
      out["checked_at"] = format_utc(st.checked_at);
    }
  return out;
}

}  // namespace

void list_schedules(Call& call) {
  auto cat = call.ctx.catalog();
  const auto status = call.ctx.scheduler.status();
  json list = json::array();
  auto store = call.ctx.pool.lease();
  for (const reg::ScheduleRow& row : store->schedules())
    if (call.caller.workflow.empty() || call.caller.workflow == row.workflow) list.push_back(schedule_json(row, *cat, status));
  call.json(200, {{"schedules", list}});
}

void get_schedule(Call& call) {
  const std::string name = call.param(1);
  call.require(reg::TokenScope::Read, name);
  auto cat = call.ctx.catalog();
  auto store = call.ctx.pool.lease();
  auto row = store->schedule(name);
  if (!row) throw ApiError{404, "not_found", "workflow '" + name + "' has no schedule on this server", 0};
  json out = schedule_json(*row, *cat, call.ctx.scheduler.status());
  json fires = json::array();
  for (const reg::FireRow& f : store->fires(name, call.int_query("limit", 50, 1, 1000)))
    fires.push_back({{"nominal", format_utc(f.nominal)},
                     {"run_id", opt_text(f.run_id)},
                     {"outcome", reg::to_string(f.outcome)},
                     {"missed", f.missed},
                     {"fired_at", format_utc(f.fired_at)},
                     {"deadline_missed_at", opt_time(f.deadline_missed_at)}});
  out["recent_fires"] = fires;
  call.json(200, out);
}

}  // namespace sluice::engine
