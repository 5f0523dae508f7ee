#include "metrics.h"

#include <fmt/format.h>

#include <cmath>

namespace strata::server {

void ServerCounters::count_response(const std::string& route, int status) {
  std::lock_guard<std::mutex> lk(mu_);
  ++responses_[{route, status}];
}

std::map<std::pair<std::string, int>, uint64_t> ServerCounters::responses() const {
  std::lock_guard<std::mutex> lk(mu_);
  return responses_;
}

namespace {

// Whole numbers as integers (fmt would print 1000000.0 as "1e+06").
std::string number(double v) {
  return v == std::floor(v) && std::fabs(v) < 1e15 ? fmt::format("{:.0f}", v) : fmt::format("{}", v);
}

void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, number(value));
}

}  // namespace

std::string prometheus_text(const EngineStats& e, const ServerCounters& s, bool ready) {
  std::string out;
  out += "# HELP strata_http_requests_total HTTP responses by route and status.\n"
         "# TYPE strata_http_requests_total counter\n";
  for (const auto& [key, n] : s.responses())
    out += fmt::format("strata_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  metric(out, "strata_ready", "gauge", "1 when the model is loaded and requests are served.", ready ? 1 : 0);
  metric(out, "strata_requests_in_flight", "gauge", "Completion requests being answered.", double(s.in_flight.load()));
  metric(out, "strata_requests_rejected_total", "counter", "Requests refused with 429 (queue full).",
         double(s.rejected.load()));
  metric(out, "strata_client_disconnects_total", "counter", "Streams cancelled because the client went away.",
         double(s.disconnects.load()));
  metric(out, "strata_requests_submitted_total", "counter", "Sequences submitted to the scheduler.",
         double(e.requests_submitted));
  metric(out, "strata_requests_finished_total", "counter", "Sequences finished.", double(e.requests_finished));
  metric(out, "strata_requests_cancelled_total", "counter", "Sequences cancelled.", double(e.requests_cancelled));
  metric(out, "strata_prompt_tokens_total", "counter", "Prompt tokens read (tokens in).", double(e.prompt_tokens));
  metric(out, "strata_generated_tokens_total", "counter", "Tokens generated (tokens out).", double(e.generated_tokens));
  metric(out, "strata_passes_total", "counter", "Forward passes over the model.", double(e.passes));
  metric(out, "strata_pass_rows_total", "counter", "Token rows computed, summed over passes.", double(e.pass_rows));
  metric(out, "strata_tokens_per_pass", "gauge", "Rows per forward pass on average (pass_rows / passes).",
         e.passes ? double(e.pass_rows) / double(e.passes) : 0.0);
  metric(out, "strata_sequences_running", "gauge", "Sequences in the running passes.", double(e.running));
  metric(out, "strata_sequences_queued", "gauge", "Sequences waiting for KV pages or a batch slot.", double(e.queued));
  metric(out, "strata_drafted_tokens_total", "counter", "Tokens drafted for speculative decoding.",
         double(e.drafted_tokens));
  metric(out, "strata_accepted_tokens_total", "counter", "Drafted tokens the model accepted.",
         double(e.accepted_tokens));
  metric(out, "strata_bytes_read_total", "counter", "Bytes read from the model files.", double(e.bytes_read));
  metric(out, "strata_io_wait_seconds_total", "counter", "Compute time spent waiting for a layer to be read.",
         e.io_wait_s);
  metric(out, "strata_compute_seconds_total", "counter", "Time spent computing passes.", e.compute_s);
  metric(out, "strata_kv_pages_total", "gauge", "Pages in the KV pool.", double(e.kv_pages_total));
  metric(out, "strata_kv_pages_used", "gauge", "Pages of the KV pool in use.", double(e.kv_pages_used));
  metric(out, "strata_kv_pool_bytes", "gauge", "Bytes of the KV pool.", double(e.kv_pool_bytes));
  metric(out, "strata_preemptions_total", "counter", "Sequences preempted to free KV pages.", double(e.preemptions));
  return out;
}

}  // namespace strata::server
