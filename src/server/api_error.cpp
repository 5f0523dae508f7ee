#include "api_error.h"

namespace strata::server {

nlohmann::json ApiError::to_json() const {
  using nlohmann::json;
  return {{"error",
           {{"message", what()},
            {"type", type_},
            {"param", param_.empty() ? json(nullptr) : json(param_)},
            {"code", code_.empty() ? json(nullptr) : json(code_)}}}};
}

ApiError bad_request(const std::string& message, const std::string& param, const std::string& code) {
  return ApiError(400, message, "invalid_request_error", param, code);
}

ApiError unauthorized(const std::string& message) {
  return ApiError(401, message, "invalid_request_error", {}, "invalid_api_key");
}

ApiError not_found(const std::string& message, const std::string& param, const std::string& code) {
  return ApiError(404, message, "invalid_request_error", param, code);
}

ApiError method_not_allowed(const std::string& method, const std::string& path) {
  return ApiError(405, "method " + method + " is not allowed on " + path, "invalid_request_error", {},
                  "method_not_allowed");
}

ApiError too_large(size_t limit) {
  return ApiError(413, "the request body is larger than the limit of " + std::to_string(limit) + " bytes",
                  "invalid_request_error", {}, "request_too_large");
}

ApiError too_many_requests(const std::string& message) {
  return ApiError(429, message, "rate_limit_error", {}, "rate_limit_exceeded");
}

ApiError unavailable(const std::string& message) {
  return ApiError(503, message, "server_error", {}, "service_unavailable");
}

ApiError internal_error(const std::string& message) { return ApiError(500, message, "server_error"); }

}  // namespace strata::server
