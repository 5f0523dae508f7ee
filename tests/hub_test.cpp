// strata pull and models by name, against the mock hub of mock_hub.h (never
// the real one): the huggingface_hub cache layout, offline use, resuming after
// a dropped connection and after kill -9, verification, tokens and errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "core/error.h"
#include "hub/digest.h"
#include "hub/hub_cache.h"
#include "hub/hub_token.h"
#include "hub/model_name.h"
#include "hub/repo_info.h"
#include "mock_hub.h"
#include "strata/hub.h"
#include "strata/strata.h"
#include "test_util.h"

namespace strata::test {
namespace {

namespace fs = std::filesystem;

const char* kRepo = "test-org/stories260K";
const char* kEnv[] = {"HF_TOKEN",     "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE",         "HF_HOME",
                      "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",  "HF_TOKEN_PATH",          "HF_ENDPOINT",
                      "XDG_CACHE_HOME", "STRATA_HUB_RETRIES",   "STRATA_HUB_RETRY_DELAY_MS", "STRATA_HUB_FREE_BYTES"};

std::string sha256(const std::string& s) {
  hub::Digest d(hub::Digest::Kind::sha256);
  d.update(s.data(), s.size());
  return d.hex();
}

std::string git_sha1(const std::string& s) {
  hub::Digest d(hub::Digest::Kind::git_blob_sha1, s.size());
  d.update(s.data(), s.size());
  return d.hex();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class Hub : public ::testing::Test {
 protected:
  void SetUp() override {
    // Nothing from this machine's hub settings may leak in, nor anything reach the real hub.
    for (const char* v : kEnv) unsetenv(v);
    setenv("HF_HOME", (tmp / "hf_home").c_str(), 1);
    setenv("HF_HUB_CACHE", cache().c_str(), 1);
    setenv("HF_ENDPOINT", hub.endpoint().c_str(), 1);
    setenv("STRATA_HUB_RETRIES", "3", 1);
    setenv("STRATA_HUB_RETRY_DELAY_MS", "5", 1);
    // The model is served from a copy made at test time.
    fs::create_directories(tmp / "src");
    for (const auto& e : fs::directory_iterator(stories_dir()))
      fs::copy_file(e.path(), tmp / "src" / e.path().filename());
    MockRepo r = repo_from_dir(kRepo, tmp / "src");
    r.files["pytorch_model.bin"] = {std::string(4096, 'x'), true};  // another format: never fetched by default
    r.files["original/consolidated.safetensors"] = {"not for strata", true};
    hub.add_repo(r);
  }
  void TearDown() override {
    for (const char* v : kEnv) unsetenv(v);
  }

  fs::path cache() const { return tmp / "cache"; }
  fs::path repo_dir() const { return cache() / "models--test-org--stories260K"; }
  std::string commit() const { return hub.repo(kRepo).commit; }
  fs::path snapshot() const { return repo_dir() / "snapshots" / commit(); }
  const std::string& content(const std::string& path) const { return hub.repo(kRepo).files.at(path).content; }
  std::string model_sha() const { return sha256(content("model.safetensors")); }
  uint64_t model_size() const { return content("model.safetensors").size(); }

  HubOptions options() const {
    HubOptions o;
    o.endpoint = hub.endpoint();
    o.cache_dir = cache();
    o.progress = false;
    return o;
  }

  TempDir tmp;
  MockHub hub;
};

TEST_F(Hub, PullWritesTheHubCacheLayoutAndRunWorksOffline) {
  auto r = run_strata({"pull", kRepo});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, snapshot().string() + "\n");
  EXPECT_EQ(read_text(repo_dir() / "refs" / "main"), commit());
  for (std::string f : {"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}) {
    fs::path link = snapshot() / f;
    ASSERT_TRUE(fs::is_symlink(link)) << f;
    std::string etag = f == "model.safetensors" ? model_sha() : git_sha1(content(f));
    EXPECT_EQ(fs::read_symlink(link), fs::path("../../blobs") / etag) << f;
    EXPECT_EQ(read_text(repo_dir() / "blobs" / etag), content(f)) << f;
    EXPECT_EQ(hub.content_requests(f), 1u) << f;
  }
  // Only what strata needs.
  for (std::string f : {"pytorch_model.bin", "original/consolidated.safetensors", "README.md", "logits_f32.bin"}) {
    EXPECT_FALSE(fs::exists(snapshot() / f)) << f;
    EXPECT_EQ(hub.content_requests(f), 0u) << f;
  }
  for (const auto& e : fs::directory_iterator(repo_dir() / "blobs"))
    EXPECT_NE(e.path().extension(), ".incomplete") << e.path();
  // The safetensors came from the CDN, after a redirect.
  EXPECT_EQ(hub.cdn_authorizations().size(), 1u);

  hub.shut_down();
  setenv("HF_HUB_OFFLINE", "1", 1);
  auto run = run_strata({"run", kRepo, "--prompt-ids", "1", "-n", "12"});
  ASSERT_EQ(run.status, 0) << run.err;
  auto local = run_strata({"run", stories_dir().string(), "--prompt-ids", "1", "-n", "12"});
  ASSERT_EQ(local.status, 0) << local.err;
  EXPECT_EQ(run.out, local.out);
  EXPECT_FALSE(run.out.empty());
  auto info = run_strata({"info", std::string(kRepo) + "@main", "--format", "json"});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find(snapshot().string()), std::string::npos) << info.out;
  auto tok = run_strata({"tokenize", kRepo, "Once upon a time"});
  auto tok_local = run_strata({"tokenize", stories_dir().string(), "Once upon a time"});
  ASSERT_EQ(tok.status, 0) << tok.err;
  EXPECT_EQ(tok.out, tok_local.out);
  // Online but with the hub gone: a cached model needs no request at all.
  unsetenv("HF_HUB_OFFLINE");
  auto again = run_strata({"run", kRepo, "Once upon a time", "-n", "3"});
  EXPECT_EQ(again.status, 0) << again.err;
}

TEST_F(Hub, ResolveDownloadsWhenMissingThenUsesTheCache) {
  fs::path p = resolve_model(kRepo, options());
  EXPECT_EQ(p, snapshot());
  size_t requests = hub.all_requests();
  EXPECT_EQ(resolve_model(kRepo, options()), snapshot());
  EXPECT_EQ(hub.all_requests(), requests);
  // A second pull asks the hub for the file list but fetches nothing.
  PullResult again = pull(kRepo, options());
  EXPECT_EQ(again.downloaded_bytes, 0u);
  EXPECT_GT(again.reused_bytes, model_size());
  EXPECT_EQ(hub.content_requests("model.safetensors"), 1u);
  // Local paths and other strings pass through untouched.
  EXPECT_EQ(resolve_model(stories_dir().string(), options()), stories_dir());
  EXPECT_EQ(resolve_model("/no/such/dir", options()), fs::path("/no/such/dir"));
  EXPECT_FALSE(is_hub_model_name(stories_dir().string()));
  EXPECT_TRUE(is_hub_model_name("org/name@v1.0"));
}

TEST_F(Hub, DroppedConnectionResumesWithARangeRequest) {
  const size_t chunk = 16 << 10;
  hub.set_chunk_bytes(chunk);
  hub.drop_after("model.safetensors", 300000);
  PullResult r = pull(kRepo, options());
  EXPECT_EQ(read_text(repo_dir() / "blobs" / model_sha()), content("model.safetensors"));
  EXPECT_LE(hub.bytes_sent("model.safetensors"), model_size() + chunk);
  EXPECT_EQ(hub.ranges("model.safetensors"), (std::vector<std::string>{"", "bytes=300000-"}));
  EXPECT_EQ(r.downloaded_bytes, hub.bytes_sent("model.safetensors") + hub.bytes_sent("config.json") +
                                    hub.bytes_sent("tokenizer.json") + hub.bytes_sent("tokenizer_config.json"));
}

TEST_F(Hub, SeveralFilesDownloadInParallel) {
  MockRepo r;
  r.id = "sharded-org/model";
  r.files["config.json"] = {"{}", false};
  for (int i = 1; i <= 4; ++i)
    r.files["model-0000" + std::to_string(i) + "-of-00004.safetensors"] = {std::string(64 << 10, char('a' + i)), true};
  hub.add_repo(r);
  hub.set_chunk_bytes(8 << 10);
  for (int i = 1; i <= 4; ++i)
    hub.throttle("model-0000" + std::to_string(i) + "-of-00004.safetensors", std::chrono::milliseconds(5));
  HubOptions o = options();
  o.parallel = 3;
  PullResult p = pull("sharded-org/model", o);
  EXPECT_EQ(p.files.size(), 5u);
  EXPECT_EQ(hub.max_parallel_downloads(), 3u);
}

TEST_F(Hub, ServerErrorsAreRetriedWithBackoff) {
  hub.fail("config.json", 503, 2);
  pull(kRepo, options());
  EXPECT_EQ(hub.content_requests("config.json"), 3u);
  EXPECT_EQ(read_text(snapshot() / "config.json"), content("config.json"));
  // Past the retry limit the error says what happened and that a re-run resumes.
  hub.fail("tokenizer.json", 500, 10);
  fs::remove_all(cache());
  std::string e = error_of([&] { pull(kRepo, options()); });
  EXPECT_NE(e.find("tokenizer.json: download failed after 3 attempts (HTTP 500)"), std::string::npos) << e;
}

TEST_F(Hub, KillDuringPullThenRerunFinishesWithoutRefetching) {
  hub.set_chunk_bytes(16 << 10);
  hub.throttle("model.safetensors", std::chrono::milliseconds(10));  // ~0.7 s for the whole file
  fs::path cfg_blob = repo_dir() / "blobs" / git_sha1(content("config.json"));
  fs::path part = repo_dir() / "blobs" / (model_sha() + ".incomplete");
  int pid = spawn_strata({"pull", kRepo}, tmp / "out1", tmp / "err1");
  bool midway = wait_for([&] { return hub.bytes_sent("model.safetensors") >= 200000 && fs::exists(cfg_blob); });
  kill(pid, SIGKILL);
  EXPECT_EQ(wait_strata(pid), 128 + SIGKILL);
  ASSERT_TRUE(midway) << read_text(tmp / "err1");
  ASSERT_TRUE(fs::exists(part));
  uint64_t kept = fs::file_size(part);
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, model_size());
  EXPECT_FALSE(fs::exists(snapshot() / "model.safetensors"));

  // The server side of the killed connection finishes before counting on.
  ASSERT_TRUE(wait_for([&] { return hub.downloads_in_flight() == 0; }));
  hub.clear_faults();
  uint64_t model_before = hub.bytes_sent("model.safetensors");
  std::map<std::string, size_t> small_requests;
  for (std::string f : {"config.json", "tokenizer.json", "tokenizer_config.json"}) small_requests[f] = hub.content_requests(f);
  auto r = run_strata({"pull", kRepo});
  ASSERT_EQ(r.status, 0) << r.err;
  // Completed files are not fetched again; the cut one continues where it stopped.
  for (const auto& [f, n] : small_requests) EXPECT_EQ(hub.content_requests(f), n) << f;
  EXPECT_EQ(hub.bytes_sent("model.safetensors") - model_before, model_size() - kept);
  EXPECT_EQ(hub.ranges("model.safetensors").back(), "bytes=" + std::to_string(kept) + "-");
  EXPECT_EQ(read_text(snapshot() / "model.safetensors"), content("model.safetensors"));
  EXPECT_FALSE(fs::exists(part));
}

TEST_F(Hub, CorruptedBlobIsDetectedDeletedAndNotLinked) {
  hub.corrupt("model.safetensors");
  std::string e = error_of([&] { pull(kRepo, options()); });
  EXPECT_NE(e.find("model.safetensors: sha256 mismatch: expected " + model_sha()), std::string::npos) << e;
  EXPECT_NE(e.find("deleted"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / model_sha()));
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (model_sha() + ".incomplete")));
  EXPECT_FALSE(fs::exists(snapshot() / "model.safetensors"));
  EXPECT_FALSE(fs::is_symlink(snapshot() / "model.safetensors"));
  // Small files are checked by their git blob sha1.
  hub.clear_faults();
  hub.corrupt("tokenizer.json");
  fs::remove_all(cache());
  e = error_of([&] { pull(kRepo, options()); });
  EXPECT_NE(e.find("tokenizer.json: git blob sha1 mismatch"), std::string::npos) << e;
  EXPECT_FALSE(fs::is_symlink(snapshot() / "tokenizer.json"));
  hub.clear_faults();
  pull(kRepo, options());
  EXPECT_EQ(read_text(snapshot() / "model.safetensors"), content("model.safetensors"));
}

TEST_F(Hub, GatedModelWithATokenWorksAndTheCdnNeverSeesTheToken) {
  MockRepo g = repo_from_dir("gated-org/stories", tmp / "src");
  g.gated = true;
  g.token = "hf_SecretToken123";
  hub.add_repo(g);
  // Without a token: say what to do.
  auto denied = run_strata({"pull", "gated-org/stories"});
  EXPECT_EQ(denied.status, 1);
  EXPECT_NE(denied.err.find("access denied (HTTP 401): the repository is gated or private. Accept its license"),
            std::string::npos)
      << denied.err;
  EXPECT_NE(denied.err.find("--token, HF_TOKEN"), std::string::npos) << denied.err;
  // A wrong token is refused (403) and never printed.
  auto wrong = run_strata({"pull", "gated-org/stories", "--token", "hf_WrongToken456"});
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.err.find("HTTP 403"), std::string::npos) << wrong.err;
  EXPECT_EQ((wrong.err + wrong.out).find("hf_WrongToken456"), std::string::npos);
  // HF_TOKEN works; the hub gets it, the CDN does not.
  setenv("HF_TOKEN", g.token.c_str(), 1);
  auto ok = run_strata({"pull", "gated-org/stories", "--format", "json"});
  ASSERT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ((ok.err + ok.out).find(g.token), std::string::npos);
  bool hub_saw_token = false;
  for (const auto& a : hub.hub_authorizations()) hub_saw_token |= a == "Bearer " + g.token;
  EXPECT_TRUE(hub_saw_token);
  ASSERT_FALSE(hub.cdn_authorizations().empty());
  for (const auto& a : hub.cdn_authorizations()) EXPECT_EQ(a, "");
  // The token file huggingface_hub's login writes.
  unsetenv("HF_TOKEN");
  fs::create_directories(tmp / "hf_home");
  std::ofstream(tmp / "hf_home" / "token") << g.token << "\n";
  fs::remove_all(cache());
  HubOptions o = options();
  EXPECT_EQ(pull("gated-org/stories", o).downloaded_bytes, fs::file_size(stories_dir() / "model.safetensors") +
                                                               fs::file_size(stories_dir() / "config.json") +
                                                               fs::file_size(stories_dir() / "tokenizer.json") +
                                                               fs::file_size(stories_dir() / "tokenizer_config.json"));
}

TEST_F(Hub, NotFoundErrorsNameWhatIsMissing) {
  auto repo = run_strata({"pull", "nobody/nothing"});
  EXPECT_EQ(repo.status, 1);
  EXPECT_NE(repo.err.find("repository nobody/nothing not found on the hub"), std::string::npos) << repo.err;
  std::string rev = error_of([&] { pull(std::string(kRepo) + "@no-such-branch", options()); });
  EXPECT_NE(rev.find("revision 'no-such-branch' not found in test-org/stories260K"), std::string::npos) << rev;
  HubOptions o = options();
  o.file = "model-Q4_K_M.gguf";
  std::string file = error_of([&] { pull(kRepo, o); });
  EXPECT_NE(file.find("file model-Q4_K_M.gguf not found in test-org/stories260K@main"), std::string::npos) << file;
  // A run on a missing repository says so too (after trying the hub).
  auto run = run_strata({"run", "nobody/nothing", "--prompt-ids", "1"});
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("nobody/nothing: not a local path; as a hub model: repository nobody/nothing not found"),
            std::string::npos)
      << run.err;
}

TEST_F(Hub, OfflineWithAMissingModelFailsFastWithoutARequest) {
  setenv("HF_HUB_OFFLINE", "1", 1);
  auto r = run_strata({"run", kRepo, "--prompt-ids", "1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("HF_HUB_OFFLINE=1 forbids downloading it"), std::string::npos) << r.err;
  auto p = run_strata({"pull", kRepo});
  EXPECT_EQ(p.status, 1);
  EXPECT_NE(p.err.find("HF_HUB_OFFLINE=1"), std::string::npos) << p.err;
  EXPECT_EQ(hub.all_requests(), 0u);
}

TEST_F(Hub, UnreachableHubAndFullDiskGiveClearErrors) {
  setenv("STRATA_HUB_FREE_BYTES", "1000", 1);
  std::string e = error_of([&] { pull(kRepo, options()); });
  uint64_t need = 0;
  for (std::string f : {"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"})
    need += content(f).size();
  EXPECT_NE(e.find("not enough disk space in " + (repo_dir() / "blobs").string() + ": the download needs " +
                   format_bytes(need) + " more, " + format_bytes(1000) + " are free"),
            std::string::npos)
      << e;
  EXPECT_EQ(hub.content_requests("model.safetensors"), 0u);
  unsetenv("STRATA_HUB_FREE_BYTES");
  hub.shut_down();
  e = error_of([&] { pull(kRepo, options()); });
  EXPECT_NE(e.find("cannot reach the hub at " + hub.endpoint()), std::string::npos) << e;
  EXPECT_NE(e.find("HF_HUB_OFFLINE=1"), std::string::npos) << e;
}

TEST_F(Hub, AFullDiskStopsWithAClearMessageAndTheNextRunResumes) {
  // The partial file of the safetensors is /dev/full: every write fails with ENOSPC.
  fs::create_directories(repo_dir() / "blobs");
  fs::path part = repo_dir() / "blobs" / (model_sha() + ".incomplete");
  fs::create_symlink("/dev/full", part);
  std::string e = error_of([&] { pull(kRepo, options()); });
  EXPECT_NE(e.find("disk full while writing " + part.string()), std::string::npos) << e;
  EXPECT_NE(e.find("run the command again; the download resumes"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(snapshot() / "model.safetensors"));
  fs::remove(part);
  pull(kRepo, options());
  EXPECT_EQ(read_text(snapshot() / "model.safetensors"), content("model.safetensors"));
}

TEST_F(Hub, BlobsAlreadyInTheCacheAreLinkedNotFetched) {
  // As huggingface_hub leaves them: named by sha256 (LFS) or git blob sha1.
  fs::create_directories(repo_dir() / "blobs");
  std::ofstream(repo_dir() / "blobs" / model_sha(), std::ios::binary) << content("model.safetensors");
  std::ofstream(repo_dir() / "blobs" / git_sha1(content("config.json")), std::ios::binary) << content("config.json");
  // By commit hash: no ref is written, the snapshot is that commit.
  PullResult p = pull(std::string(kRepo) + "@" + commit(), options());
  EXPECT_EQ(p.snapshot, snapshot());
  EXPECT_EQ(p.reused_bytes, model_size() + content("config.json").size());
  EXPECT_EQ(hub.content_requests("model.safetensors"), 0u);
  EXPECT_EQ(hub.content_requests("config.json"), 0u);
  EXPECT_EQ(hub.content_requests("tokenizer.json"), 1u);
  EXPECT_FALSE(fs::exists(repo_dir() / "refs" / commit()));
  EXPECT_EQ(read_text(snapshot() / "model.safetensors"), content("model.safetensors"));
  EXPECT_EQ(resolve_model(std::string(kRepo) + "@" + commit(), options()), snapshot());
}

TEST_F(Hub, FileSelection) {
  // --include globs; '*' crosses '/'.
  auto r = run_strata({"pull", "--include", "*.json", "--include", "original/*", kRepo, "--format", "json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(snapshot() / "original" / "consolidated.safetensors"));
  EXPECT_EQ(fs::read_symlink(snapshot() / "original" / "consolidated.safetensors"),
            fs::path("../../../blobs") / sha256("not for strata"));
  EXPECT_TRUE(fs::exists(snapshot() / "reference.json"));
  EXPECT_FALSE(fs::exists(snapshot() / "model.safetensors"));
  // A repository of GGUF files: one by --file; several without it is an error naming them.
  MockRepo g;
  g.id = "gguf-org/many";
  g.files["a-Q4_0.gguf"] = {"GGUF a", true};
  g.files["a-Q8_0.gguf"] = {"GGUF b", true};
  g.files["README.md"] = {"# many", false};
  hub.add_repo(g);
  HubOptions o = options();
  o.file = "a-Q8_0.gguf";
  PullResult p = pull("gguf-org/many", o);
  EXPECT_EQ(p.model, p.snapshot / "a-Q8_0.gguf");
  EXPECT_EQ(read_text(p.model), "GGUF b");
  EXPECT_EQ(p.files, std::vector<std::string>{"a-Q8_0.gguf"});
  std::string e = error_of([&] { pull("gguf-org/many", options()); });
  EXPECT_NE(e.find("holds 2 GGUF files and no safetensors; pick one with `strata pull gguf-org/many --file"),
            std::string::npos)
      << e;
  // Resolving the name with the same --file uses the cache.
  size_t before = hub.all_requests();
  EXPECT_EQ(resolve_model("gguf-org/many", o), p.model);
  EXPECT_EQ(hub.all_requests(), before);
}

TEST(HubNames, ParseAndEncode) {
  auto n = hub::parse_model_name("meta-llama/Llama-3.1-8B@refs/pr/1");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->repo, "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(n->revision, "refs/pr/1");
  EXPECT_EQ(hub::url_encode_component(n->revision), "refs%2Fpr%2F1");
  EXPECT_EQ(hub::parse_model_name("org/name")->revision, "main");
  EXPECT_TRUE(hub::parse_model_name("org/name@0123456789abcdef0123456789abcdef01234567")->revision_is_commit());
  for (std::string bad : {"name", "/abs/path", "./rel/x", "a/b/c", "org/na me", "org/..", "org/a--b", "org/name@",
                          "org/name@../x", "-org/name"})
    EXPECT_FALSE(hub::parse_model_name(bad)) << bad;
  EXPECT_EQ(hub::url_encode_path("sub dir/f+1.json"), "sub%20dir/f%2B1.json");
}

TEST(HubNames, GlobMatch) {
  EXPECT_TRUE(hub::glob_match("*.safetensors", "model-00001-of-00002.safetensors"));
  EXPECT_TRUE(hub::glob_match("*.json", "sub/config.json"));
  EXPECT_FALSE(hub::glob_match("*.json", "config.json.bak"));
  EXPECT_TRUE(hub::glob_match("model-0000?-of-*.safetensors", "model-00002-of-00003.safetensors"));
  EXPECT_TRUE(hub::glob_match("[ab]*.gguf", "b-Q4.gguf"));
  EXPECT_FALSE(hub::glob_match("[!ab]*.gguf", "b-Q4.gguf"));
  EXPECT_TRUE(hub::glob_match("*", ""));
}

TEST(HubNames, RepoInfoRejectsUnsafePaths) {
  std::string sha(40, 'a');
  auto json = [&](const std::string& name) {
    return "{\"sha\":\"" + sha + "\",\"siblings\":[{\"rfilename\":\"" + name + "\",\"blobId\":\"" + sha + "\"}]}";
  };
  EXPECT_EQ(hub::parse_repo_info(json("config.json"), "o/n", "main").files.at(0).etag(), sha);
  for (std::string bad : {"../x", "/etc/passwd", "a/../../x", "a//b", "."})
    EXPECT_THROW(hub::parse_repo_info(json(bad), "o/n", "main"), Error) << bad;
  EXPECT_THROW(hub::parse_repo_info("{\"siblings\":[]}", "o/n", "main"), Error);
}

TEST(HubNames, TokenAndCacheLookupOrder) {
  TempDir t;
  for (const char* v : kEnv) unsetenv(v);
  setenv("HF_HOME", t.path().c_str(), 1);
  EXPECT_EQ(hub::default_cache_dir(), t.path() / "hub");
  EXPECT_EQ(hub::find_token(""), "");
  std::ofstream(t / "token") << "  hf_file\n";
  EXPECT_EQ(hub::find_token(""), "hf_file");
  setenv("HF_TOKEN", "hf_env", 1);
  EXPECT_EQ(hub::find_token(""), "hf_env");
  EXPECT_EQ(hub::find_token("hf_flag"), "hf_flag");
  setenv("HF_HUB_CACHE", (t / "c").c_str(), 1);
  EXPECT_EQ(hub::default_cache_dir(), t / "c");
  for (const char* v : kEnv) unsetenv(v);
}

}  // namespace
}  // namespace strata::test
