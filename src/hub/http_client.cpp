#include "hub/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace strata::hub {

namespace {

std::once_flag curl_once;

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Transfer {
  HttpResponse* resp = nullptr;
  const BodySink* sink = nullptr;
  bool aborted_by_sink = false;
  size_t body_limit = 64u << 20;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line (also after "100 Continue"): headers start over.
    t->resp->headers.clear();
    size_t sp = line.find(' ');
    t->resp->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
  } else if (size_t colon = line.find(':'); colon != std::string::npos) {
    std::string v = line.substr(colon + 1);
    size_t b = v.find_first_not_of(" \t");
    t->resp->headers[lower(line.substr(0, colon))] = b == std::string::npos ? "" : v.substr(b);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * n;
  long st = t->resp->status;
  if (t->sink && st >= 200 && st < 300) {
    if (!(*t->sink)(*t->resp, data, bytes)) {
      t->aborted_by_sink = true;
      return 0;
    }
    return bytes;
  }
  if (t->resp->body.size() < t->body_limit) t->resp->body.append(data, std::min(bytes, t->body_limit - t->resp->body.size()));
  return bytes;
}

long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? "" : it->second;
}

std::string HttpResponse::first_header(const std::string& name) const {
  auto it = first_headers.find(lower(name));
  return it == first_headers.end() ? "" : it->second;
}

std::string url_origin(const std::string& url) {
  CURLU* u = curl_url();
  if (!u) return "";
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
      out = lower(std::string(scheme) + "://" + host + ":" + port);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

HttpClient::HttpClient(std::string endpoint, std::string token)
    : endpoint_(std::move(endpoint)), token_(std::move(token)) {
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  origin_ = url_origin(endpoint_);
  if (origin_.empty()) throw UsageError("hub endpoint '" + endpoint_ + "' is not a URL (check HF_ENDPOINT)");
  curl_ = curl_easy_init();
  if (!curl_) throw Error("cannot initialize libcurl");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResponse HttpClient::get(const std::string& url) { return request(url, 0, nullptr); }

HttpResponse HttpClient::download(const std::string& url, uint64_t offset, const BodySink& sink) {
  return request(url, offset, &sink);
}

HttpResponse HttpClient::request(const std::string& start_url, uint64_t offset, const BodySink* sink) {
  CURL* c = static_cast<CURL*>(curl_);
  std::string url = start_url;
  HttpResponse resp;
  for (int hop = 0; hop < 10; ++hop) {
    curl_easy_reset(c);
    resp.headers.clear();
    resp.body.clear();
    resp.status = 0;
    resp.url = url;
    Transfer t;
    t.resp = &resp;
    t.sink = sink;
    char err[CURL_ERROR_SIZE] = {0};
    curl_slist* hdrs = nullptr;
    // The token only to the hub itself, never to the CDN a redirect points at.
    std::string auth;
    if (!token_.empty() && url_origin(url) == origin_) {
      auth = "Authorization: Bearer " + token_;
      hdrs = curl_slist_append(hdrs, auth.c_str());
    }
    // Sizes and hashes are of the raw bytes: no content coding.
    hdrs = curl_slist_append(hdrs, "Accept-Encoding: identity");
    std::string range;
    if (offset > 0) {
      range = std::to_string(offset) + "-";
      curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    }
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "strata/0.1.0");
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, env_long("STRATA_HUB_CONNECT_TIMEOUT_S", 15));
    // A stalled transfer (under 1 byte/s for this long) is cut and retried.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, env_long("STRATA_HUB_STALL_TIMEOUT_S", 60));
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
      if (t.aborted_by_sink) throw Error("download aborted");  // the sink recorded why
      std::string what = err[0] ? err : curl_easy_strerror(rc);
      throw TransportError(what);
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    resp.status = code;
    if (hop == 0) resp.first_headers = resp.headers;
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
      char* next = nullptr;
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next);
      if (!next) return resp;
      url = next;
      continue;
    }
    return resp;
  }
  throw Error("too many redirects from " + start_url);
}

}  // namespace strata::hub
