// The public hub API (include/strata/hub.h): names resolved against the
// cache first, so a model that is there costs no network request; pulled
// otherwise.
#include "strata/hub.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hub/downloader.h"
#include "hub/hub_cache.h"
#include "hub/hub_token.h"
#include "hub/model_name.h"
#include "hub/repo_info.h"

namespace fs = std::filesystem;

namespace strata {

namespace {

bool env_true(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  std::string s(v);
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

bool offline(const HubOptions& o) { return o.offline ? *o.offline : env_true("HF_HUB_OFFLINE"); }

fs::path cache_root(const HubOptions& o) { return o.cache_dir.empty() ? hub::default_cache_dir() : o.cache_dir; }

std::string endpoint(const HubOptions& o) {
  if (!o.endpoint.empty()) return o.endpoint;
  if (const char* v = std::getenv("HF_ENDPOINT"); v && *v) return v;
  return "https://huggingface.co";
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);  // follows the snapshot link: the blob must be there
}

std::vector<fs::path> top_level(const fs::path& dir, const std::string& glob) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (hub::glob_match(glob, e.path().filename().string()) && path_exists(e.path())) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// What a complete snapshot of `name` in the cache opens as, or nullopt when
// the cache does not hold one (never downloaded, or cut short).
std::optional<fs::path> cached_model(const hub::RepoCache& cache, const hub::ModelName& name, const HubOptions& o) {
  std::optional<std::string> commit = cache.commit_for(name.revision);
  if (!commit) return std::nullopt;
  fs::path snap = cache.snapshot(*commit);
  if (!o.file.empty()) return path_exists(snap / o.file) ? std::optional<fs::path>(snap / o.file) : std::nullopt;
  if (path_exists(snap / "config.json")) {
    fs::path index = snap / "model.safetensors.index.json";
    if (path_exists(index)) {
      try {
        std::ifstream f(index);
        nlohmann::json j = nlohmann::json::parse(f);
        for (const auto& [tensor, file] : j.at("weight_map").items())
          if (!path_exists(snap / file.get<std::string>())) return std::nullopt;
        return snap;
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
    if (!top_level(snap, "*.safetensors").empty()) return snap;
  }
  std::vector<fs::path> ggufs = top_level(snap, "*.gguf");
  if (ggufs.size() == 1) return ggufs[0];
  return std::nullopt;
}

// HubOptions::file names a file inside the snapshot, nothing outside it.
void check_file_option(const HubOptions& o) {
  if (o.file.empty()) return;
  fs::path p(o.file);
  bool bad = p.is_absolute();
  for (const auto& part : p) bad |= part == "..";
  if (bad) throw UsageError("--file " + o.file + ": expected a path inside the repository");
}

}  // namespace

bool is_hub_model_name(const std::string& name_or_path) {
  return !path_exists(name_or_path) && hub::parse_model_name(name_or_path).has_value();
}

fs::path resolve_model(const std::string& name_or_path, const HubOptions& options) {
  if (path_exists(name_or_path)) return name_or_path;
  std::optional<hub::ModelName> name = hub::parse_model_name(name_or_path);
  if (!name) return name_or_path;
  check_file_option(options);
  fs::path root = cache_root(options);
  hub::RepoCache cache(root, name->repo);
  if (std::optional<fs::path> m = cached_model(cache, *name, options)) return *m;
  if (offline(options))
    throw Error(fmt::format("{}: not a local path, and not in the hub cache ({}); HF_HUB_OFFLINE=1 forbids "
                            "downloading it. Unset HF_HUB_OFFLINE, or run `strata pull {}` while online",
                            name_or_path, root.string(), name_or_path));
  // Say that it was taken as a hub name: it may be a mistyped local path.
  try {
    return pull(name_or_path, options).model;
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("{}: not a local path; as a hub model: {}", name_or_path, e.what()));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: not a local path; as a hub model: {}", name_or_path, e.what()));
  }
}

PullResult pull(const std::string& name_text, const HubOptions& options) {
  std::optional<hub::ModelName> name = hub::parse_model_name(name_text);
  if (!name)
    throw UsageError(fmt::format("'{}' is not a hub model name (expected ORG/NAME or ORG/NAME@REVISION)", name_text));
  check_file_option(options);
  PullResult result;
  result.repo = name->repo;
  result.revision = name->revision;
  fs::path root = cache_root(options);
  hub::RepoCache cache(root, name->repo);
  if (offline(options)) {
    if (std::optional<fs::path> m = cached_model(cache, *name, options)) {
      result.commit = *cache.commit_for(name->revision);
      result.snapshot = cache.snapshot(result.commit);
      result.model = *m;
      return result;
    }
    throw Error(fmt::format("cannot pull {}: HF_HUB_OFFLINE=1 forbids network access and the cache ({}) does not "
                            "hold it",
                            name_text, root.string()));
  }
  std::string token = hub::find_token(options.token);
  hub::HttpClient http(endpoint(options), token);
  hub::RepoInfo info = hub::fetch_repo_info(http, name->repo, name->revision);
  std::vector<hub::RepoFile> files = hub::select_files(info, options.include, options.file);
  // The ref first, as huggingface_hub does: a snapshot cut short is still
  // found (and completed) by the next pull.
  cache.write_ref(name->revision, info.commit);
  hub::Downloader downloader(cache, info, {http.endpoint(), token, options.parallel, options.progress});
  hub::DownloadStats stats = downloader.run(files);
  result.commit = info.commit;
  result.snapshot = cache.snapshot(info.commit);
  fs::create_directories(result.snapshot);
  result.downloaded_bytes = stats.downloaded;
  result.reused_bytes = stats.reused;
  bool has_config = false;
  std::vector<std::string> ggufs;
  for (const auto& f : files) {
    result.files.push_back(f.path);
    has_config |= f.path == "config.json";
    if (hub::glob_match("*.gguf", f.path) && f.path.find('/') == std::string::npos) ggufs.push_back(f.path);
  }
  result.model = result.snapshot;
  if (!options.file.empty()) result.model = result.snapshot / options.file;
  else if (!has_config && ggufs.size() == 1) result.model = result.snapshot / ggufs[0];
  return result;
}

}  // namespace strata
