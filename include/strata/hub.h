// strata hub: models by name from the Hugging Face hub, downloaded into the
// hub's standard cache so that files huggingface_hub already fetched are
// reused and vice versa.
//
//   strata::HubOptions hub;
//   hub.token = "hf_...";                     // else HF_TOKEN, else $HF_HOME/token
//   std::filesystem::path dir = strata::resolve_model("org/name@main", hub);
//   auto engine = strata::Engine::open(dir);  // a snapshot directory (or a .gguf file)
//
// Names are ORG/NAME[@REVISION]. Anything that exists on disk is a local
// path and returned as is. Downloads are resumable (blobs/<etag>.incomplete
// continued with Range requests), verified (sha256 of LFS files, git blob
// sha1 of small files) before a blob is renamed into place and linked, and
// refused under HF_HUB_OFFLINE=1. Errors are strata::Error with a message for
// the user (gated/private repository, not found, no network, disk full);
// the token never appears in one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace strata {

struct HubOptions {
  std::string token;     // empty: HF_TOKEN, else the token file ($HF_TOKEN_PATH, $HF_HOME/token)
  std::string endpoint;  // empty: HF_ENDPOINT, else https://huggingface.co
  std::filesystem::path cache_dir;  // empty: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  // Glob patterns of repository files to fetch (fnmatch-style, '*' crosses
  // '/'); empty = what strata needs: config.json, generation_config.json,
  // tokenizer and chat-template files, *.safetensors and their index.
  std::vector<std::string> include;
  std::string file;               // one file to fetch (e.g. one GGUF of many), plus nothing else
  std::optional<bool> offline;    // nullopt: HF_HUB_OFFLINE
  size_t parallel = 4;            // files downloaded at the same time
  bool progress = true;           // progress bar on stderr, only when it is a terminal
};

struct PullResult {
  std::string repo;                // ORG/NAME
  std::string revision;            // as asked ("main" by default)
  std::string commit;              // the commit it resolved to
  std::filesystem::path snapshot;  // <cache>/models--ORG--NAME/snapshots/<commit>
  std::filesystem::path model;     // what to open: the snapshot, or the one file of HubOptions::file / a lone GGUF
  std::vector<std::string> files;  // repository paths present in the snapshot
  uint64_t downloaded_bytes = 0;   // fetched over the network by this call
  uint64_t reused_bytes = 0;       // already in the cache (complete blobs)
};

// True for ORG/NAME or ORG/NAME@REV that is not an existing local path.
bool is_hub_model_name(const std::string& name_or_path);

// A local path (anything that exists) is returned unchanged, as is any
// string that is not a hub name (opening it then reports it missing). A hub
// name is looked up in the cache; a snapshot that is missing or incomplete is
// downloaded with pull(), or refused with a clear error when offline.
std::filesystem::path resolve_model(const std::string& name_or_path, const HubOptions& options = {});

// Downloads (or completes) ORG/NAME[@REV] into the cache and links its
// snapshot; files already complete in the cache are not fetched again.
PullResult pull(const std::string& name, const HubOptions& options = {});

}  // namespace strata
