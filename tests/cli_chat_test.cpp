// The chat commands on stories260K (a real tiny model) with a small chat
// template: chat-template, run --chat, batch with messages, and the
// interactive chat driven through a pseudo-terminal.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "test_util.h"

using namespace strata::test;
using json = nlohmann::json;

namespace {

// Turns end with </s>, the model's EOS, so generation stops at a turn's end.
const char* kTemplate =
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n"
    "{% elif m.role == 'user' %}Q: {{ m.content }}\n{% else %}A: {{ m.content }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}A:{% endif %}";

std::string write_template(const TempDir& dir) {
  std::string p = (dir / "chat.jinja").string();
  std::ofstream(p) << kTemplate;
  return p;
}

}  // namespace

TEST(CliChat, ChatTemplateRendersCasesFiles) {
  std::string name = "tokenizer-qwen3";
  auto dir = testdata() / "chat_templates";
  CommandResult r = run_strata({"chat-template", (dir / (name + ".jinja")).string(), "--input",
                                (dir / (name + ".cases.jsonl")).string()});
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream cases(dir / (name + ".cases.jsonl"));
  std::istringstream out(r.out);
  std::string c, o;
  size_t n = 0;
  while (std::getline(cases, c) && std::getline(out, o)) {
    json cj = json::parse(c), oj = json::parse(o);
    if (cj.contains("expected")) {
      EXPECT_EQ(oj.value("text", "<none>"), cj["expected"].get<std::string>()) << n;
    } else {
      EXPECT_TRUE(oj.contains("error")) << n;
    }
    ++n;
  }
  EXPECT_EQ(n, 24u);
  // --messages with --template-var, on a model directory with --chat-template.
  TempDir dir2;
  std::ofstream(dir2 / "m.json") << R"([{"role": "user", "content": "Hi"}])";
  std::ofstream(dir2 / "t.jinja") << "{{ messages[0].content }}|{{ flag }}|{{ n + 1 }}|{{ bos_token }}";
  r = run_strata({"chat-template", stories_dir().string(), "--chat-template", (dir2 / "t.jinja").string(),
                  "--messages", (dir2 / "m.json").string(), "--template-var", "flag=false", "--template-var", "n=41"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "Hi|False|42|<s>");
}

TEST(CliChat, BatchWithMessagesEqualsRunChatOneByOne) {
  TempDir dir;
  std::string tmpl = write_template(dir);
  const std::vector<std::pair<std::string, std::string>> convs = {
      {"", "Once upon a time"}, {"A story about a cat.", "The cat"}, {"", "Lily and Ben went to the park"}};
  {
    std::ofstream in(dir / "in.jsonl");
    for (size_t i = 0; i < convs.size(); ++i) {
      json msgs = json::array();
      if (!convs[i].first.empty()) msgs.push_back({{"role", "system"}, {"content", convs[i].first}});
      msgs.push_back({{"role", "user"}, {"content", convs[i].second}});
      in << json({{"id", i}, {"messages", msgs}, {"max_new_tokens", 24}}).dump() << "\n";
    }
  }
  CommandResult b = run_strata({"batch", stories_dir().string(), "--input", (dir / "in.jsonl").string(), "--output",
                                (dir / "out.jsonl").string(), "--chat-template", tmpl, "--quiet"});
  ASSERT_EQ(b.status, 0) << b.err;
  std::map<int, json> batch;
  std::ifstream out(dir / "out.jsonl");
  for (std::string l; std::getline(out, l);) {
    json j = json::parse(l);
    ASSERT_FALSE(j.contains("error")) << l;
    batch[j["id"].get<int>()] = j;
  }
  ASSERT_EQ(batch.size(), convs.size());
  for (size_t i = 0; i < convs.size(); ++i) {
    std::vector<std::string> args = {"run", stories_dir().string(), "--chat", convs[i].second, "--chat-template", tmpl,
                                     "-n", "24", "--format", "json"};
    if (!convs[i].first.empty()) args.insert(args.end(), {"--system", convs[i].first});
    CommandResult r = run_strata(args);
    ASSERT_EQ(r.status, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["prompt_ids"].size(), batch[int(i)]["prompt_tokens"].get<size_t>()) << i;
    EXPECT_EQ(j["text"], batch[int(i)]["text"]) << i;
    // The batch's ids may keep the end-of-turn id the run drops, or not.
    std::vector<int> a = j["output_ids"], c = batch[int(i)]["output_ids"];
    while (!a.empty() && a.back() == 2) a.pop_back();
    while (!c.empty() && c.back() == 2) c.pop_back();
    EXPECT_EQ(a, c) << i;
    EXPECT_EQ(j["prompt_ids"][0], 1) << "the template's bos_token is the BOS id";
  }
}

namespace {

// strata chat on a pseudo-terminal.
class PtyChat {
 public:
  explicit PtyChat(const std::vector<std::string>& args) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      std::vector<char*> argv;
      std::string bin = strata_bin();
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
  }
  ~PtyChat() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  void send(const std::string& s) { ASSERT_EQ(write(fd_, s.data(), s.size()), ssize_t(s.size())); }
  // Reads until `pattern` matches the output since the last call (or 20 s).
  std::string read_until(const std::regex& pattern) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!std::regex_search(buf_, pattern) && std::chrono::steady_clock::now() < end) pump(100);
    if (!std::regex_search(buf_, pattern)) ADD_FAILURE() << "timed out; output so far:\n" << buf_;
    std::string got = buf_;
    if (std::getenv("STRATA_PTY_DEBUG")) std::fprintf(stderr, "<<%s>>\n", got.c_str());
    buf_.clear();
    return got;
  }
  // Waits for any new output; returns it (without consuming).
  bool wait_output(int ms) {
    size_t before = buf_.size();
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (buf_.size() == before && std::chrono::steady_clock::now() < end) pump(5);
    return buf_.size() > before;
  }
  int wait_exit() {
    // poll() returns at once after the child closed the terminal, so sleep
    // between checks too.
    for (int i = 0; i < 400; ++i) {
      pump(25);
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      usleep(25000);
    }
    return -1;
  }

 private:
  void pump(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms) > 0) {
      char b[4096];
      ssize_t n = read(fd_, b, sizeof b);
      if (n > 0) buf_.append(b, size_t(n));
    }
  }
  int fd_ = -1;
  pid_t pid_ = -1;
  std::string buf_;
};

}  // namespace

TEST(CliChat, InteractiveChatThroughAPseudoTerminal) {
  TempDir dir;
  std::string tmpl = write_template(dir);
  PtyChat chat({"chat", stories_dir().string(), "--chat-template", tmpl, "--profile", "--no-stop", "-n", "120"});
  std::regex turn_re(R"(\[turn (\d+): prompt (\d+) tokens \((\d+) from the cache, (\d+) computed\))");
  // A turn is over when its profile line and the next prompt are out.
  std::regex turn_done(R"(\[turn \d+[\s\S]*> $)"), reset_done(R"(reset\][\s\S]*> $)");
  std::smatch m;
  chat.read_until(std::regex("> $"));

  // Turn 1 streams an answer; nothing is cached yet.
  chat.send("Once upon a time\n");
  std::string t1 = chat.read_until(turn_done);
  ASSERT_TRUE(std::regex_search(t1, m, turn_re)) << t1;
  EXPECT_EQ(m[3], "0");
  size_t prompt1 = std::stoul(m[2]);
  EXPECT_GT(t1.find("[turn"), t1.find("Once upon a time\r\n") + 18) << "an answer was streamed before the profile";

  // Turn 2 computes only its new tokens: the first turn is in the cache.
  chat.send("The dog\n");
  std::string t2 = chat.read_until(turn_done);
  ASSERT_TRUE(std::regex_search(t2, m, turn_re)) << t2;
  size_t prompt2 = std::stoul(m[2]), cached2 = std::stoul(m[3]), computed2 = std::stoul(m[4]);
  EXPECT_GE(cached2, prompt1);
  EXPECT_LT(computed2, prompt2 - prompt1 + 4);
  EXPECT_EQ(cached2 + computed2, prompt2);

  // /reset: the next turn starts from nothing.
  chat.send("/reset\n");
  chat.read_until(reset_done);
  chat.send("Hello\n");
  std::string t3 = chat.read_until(turn_done);
  ASSERT_TRUE(std::regex_search(t3, m, turn_re)) << t3;
  EXPECT_EQ(m[3], "0");

  // Ctrl-C during an answer interrupts it and the chat goes on. Answers run
  // to 120 tokens (--no-stop), so there is time to
  // interrupt; retried in case an answer still finished first.
  bool interrupted = false;
  for (int attempt = 0; attempt < 8 && !interrupted; ++attempt) {
    chat.send("/system long\n");
    chat.read_until(reset_done);
    chat.send("Tell a long story\n");
    std::string t = chat.read_until(std::regex("story\r\n[\\s\\S]"));  // the answer has started
    chat.send("\x03");
    t += chat.read_until(turn_done);
    interrupted = t.find("[interrupted]") != std::string::npos;
  }
  EXPECT_TRUE(interrupted);
  chat.send("Still there?\n");
  std::string t4 = chat.read_until(turn_done);
  EXPECT_TRUE(std::regex_search(t4, turn_re)) << t4;

  chat.send((std::string("/save ") + (dir / "conv.json").string() + "\n").c_str());
  chat.read_until(std::regex("saved[\\s\\S]*> $"));
  json saved = json::parse(read_text(dir / "conv.json"));
  ASSERT_GE(saved.size(), 3u);
  EXPECT_EQ(saved[0]["role"], "system");
  EXPECT_EQ(saved[1]["role"], "user");
  EXPECT_EQ(saved[2]["role"], "assistant");
  chat.send("/exit\n");
  EXPECT_EQ(chat.wait_exit(), 0);
}

TEST(CliChat, ChatOnPipedStdin) {
  TempDir dir;
  std::string tmpl = write_template(dir);
  std::ofstream(dir / "in.txt") << "Once upon a time\nThe end\n";
  // run_strata has no stdin; use a shell-free spawn with stdin redirected.
  pid_t pid = fork();
  if (pid == 0) {
    freopen((dir / "in.txt").c_str(), "r", stdin);
    freopen((dir / "out.txt").c_str(), "w", stdout);
    freopen((dir / "err.txt").c_str(), "w", stderr);
    execl(strata_bin().c_str(), "strata", "chat", stories_dir().c_str(), "--chat-template", tmpl.c_str(), "--profile",
          "-n", "8", nullptr);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_text(dir / "err.txt");
  std::string err = read_text(dir / "err.txt");
  EXPECT_NE(err.find("[turn 2: "), std::string::npos) << err;
  EXPECT_EQ(read_text(dir / "out.txt").find("> "), std::string::npos) << "no prompt when stdin is not a terminal";
}
