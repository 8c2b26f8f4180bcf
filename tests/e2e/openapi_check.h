#pragma once
// Checks responses of `sluice serve` against docs/openapi.yaml (converted to
// JSON at build time): the operation for the method and path, the status
// among its documented responses, the media type, and a JSON body against the
// response's schema (the JSON Schema subset OpenAPI 3.0 uses: type, nullable,
// properties, required, additionalProperties, items, enum, allOf, $ref,
// minimum/maximum, min/maxLength, pattern, format date-time).
#include <string>

namespace sluice::test {

// "" when the response conforms; else what differs, with a JSON path
// ("GET /api/v1/runs 200: $.runs[0].status: 'done' is not one of ...").
// An unknown path must be a documented-shape 404, a known path with an
// unknown method a 405.
std::string openapi_mismatch(const std::string& method, const std::string& target, int status,
                             const std::string& content_type, const std::string& body);

}  // namespace sluice::test
