// A small HTTP client over libcurl for the hub: GET with the token sent only
// to the hub's own origin, redirects followed one hop at a time (the hub
// sends large files to a CDN on another host, which must not see the token),
// Range requests for resuming, and the first hop's headers kept (the hub's
// X-Repo-Commit / X-Linked-Etag / X-Linked-Size are on the redirect itself).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/error.h"

namespace strata::hub {

// The request never got an HTTP answer (no network, refused, reset, cut
// mid-body, timed out): worth retrying.
class TransportError : public Error {
 public:
  using Error::Error;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;        // of the final hop, lower-case names
  std::map<std::string, std::string> first_headers;  // of the first hop (the hub's own answer)
  std::string body;                                  // error bodies and get() bodies
  std::string url;                                   // of the final hop
  std::string header(const std::string& name) const;
  std::string first_header(const std::string& name) const;
};

// Receives the body of a 2xx answer (with that answer's status and headers,
// so a 200 to a Range request can be told from a 206); false aborts the
// transfer. It must not throw (it runs inside libcurl).
using BodySink = std::function<bool(const HttpResponse& answer, const char* data, size_t size)>;

class HttpClient {
 public:
  // `endpoint` is the hub's base URL; `token` goes (as a Bearer header) only
  // to URLs of that origin (scheme, host and port).
  HttpClient(std::string endpoint, std::string token);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GET into response.body (any status). Throws TransportError.
  HttpResponse get(const std::string& url);
  // GET streaming a 2xx body to `sink`, from byte `offset` (a Range request
  // when > 0). Non-2xx bodies go to response.body. Throws TransportError.
  HttpResponse download(const std::string& url, uint64_t offset, const BodySink& sink);

  const std::string& endpoint() const { return endpoint_; }

 private:
  HttpResponse request(const std::string& url, uint64_t offset, const BodySink* sink);
  std::string endpoint_, token_, origin_;
  void* curl_ = nullptr;
};

// "scheme://host:port" in lower case with the default port filled in; empty
// when the URL does not parse.
std::string url_origin(const std::string& url);

}  // namespace strata::hub
