// Errors of the HTTP API in OpenAI's shape:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": null}}
// Request handling throws ApiError; the routes turn it (and any other
// exception) into a response, so no input can produce a crash.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace strata::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = {}, std::string code = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }  // "" = null
  const std::string& code() const { return code_; }    // "" = null
  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_, param_, code_;
};

// 400 invalid_request_error naming the field.
ApiError bad_request(const std::string& message, const std::string& param = {}, const std::string& code = {});
ApiError unauthorized(const std::string& message);
ApiError not_found(const std::string& message, const std::string& param = {}, const std::string& code = {});
ApiError method_not_allowed(const std::string& method, const std::string& path);
ApiError too_large(size_t limit);
ApiError too_many_requests(const std::string& message);
ApiError unavailable(const std::string& message);
ApiError internal_error(const std::string& message);

}  // namespace strata::server
