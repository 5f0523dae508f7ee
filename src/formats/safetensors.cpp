#include "formats/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <system_error>

#include "core/error.h"

namespace strata {
namespace {

using json = nlohmann::json;

// A valid header nests three deep (root object, tensor entry, shape array).
// nlohmann parses iteratively, so this is not about the stack: it refuses
// pathological inputs early instead of building them.
constexpr int kMaxJsonDepth = 8;
// A DOM costs ~16-100 bytes per JSON item (value, key or container), so a
// 100 MB header of tiny items could take gigabytes. A tensor takes about 12
// items: this allows ~300k tensors per file (the largest public MoE models
// have ~100k in all their shards) and bounds the DOM to a few hundred MB.
constexpr size_t kMaxJsonItems = 4'000'000;
// model.safetensors.index.json of the largest public models is a few MB.
constexpr uint64_t kMaxIndexBytes = 100'000'000;
constexpr size_t kMaxQuotedChars = 160;

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw Error(file + ": " + what);
}

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

// A string from an untrusted file, made safe and short for an error message.
std::string quote_name(std::string_view s) {
  size_t n = std::min(s.size(), kMaxQuotedChars);
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  std::string out = "'";
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  if (n < s.size()) out += "...";
  return out + "'";
}

// A JSON value from an untrusted file, short, for an error message.
std::string describe(const json& v) {
  std::string d = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (d.size() > 60) {
    size_t n = 60;
    while (n > 0 && (static_cast<unsigned char>(d[n]) & 0xC0) == 0x80) --n;
    d = d.substr(0, n) + "...";
  }
  return std::string(v.type_name()) + " " + d;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i == 16) {
      s += ", ... (" + std::to_string(shape.size()) + " dims)";
      break;
    }
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Parses JSON with exceptions converted to Error, refusing duplicate keys
// (nlohmann would silently keep the last one: two different tensors under one
// name), nesting deeper than kMaxJsonDepth and more than kMaxJsonItems items.
json parse_json(const char* begin, const char* end, const std::string& file, const char* what) {
  std::vector<std::set<std::string>> keys;  // one per open container
  size_t items = 0;
  auto check = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
    if (ev != json::parse_event_t::object_end && ev != json::parse_event_t::array_end && ++items > kMaxJsonItems)
      fail(file, std::string(what) + " has more than " + std::to_string(kMaxJsonItems) +
                     " JSON items (values and keys); refusing to build it");
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth)
          fail(file, std::string(what) + " nests deeper than " + std::to_string(kMaxJsonDepth) +
                         " levels (not a valid " + what + ")");
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() && !keys.back().insert(parsed.get_ref<const std::string&>()).second) {
          const std::string& k = parsed.get_ref<const std::string&>();
          if (keys.size() == 1 && std::string_view(what) == "header") fail(file, "tensor " + quote_name(k) + " appears more than once in the " + what);
          fail(file, "key " + quote_name(k) + " appears more than once in one object of the " + what);
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, check, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    fail(file, std::string(what) + " is not valid JSON: " + e.what());
  }
}

// Reads a JSON integer into [0, 2^63): offsets and dimensions both fit
// int64_t and off_t. Returns an error text, empty on success.
std::string get_index(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    uint64_t x = v.get<uint64_t>();
    if (x > uint64_t(INT64_MAX)) return std::to_string(x) + " is too large";
    *out = x;
    return {};
  }
  if (v.is_number_integer()) {
    int64_t x = v.get<int64_t>();
    if (x < 0) return std::to_string(x) + " is negative";
    *out = uint64_t(x);
    return {};
  }
  return "is " + describe(v) + ", expected a non-negative integer";
}

const json* field(const json& entry, const char* key, const std::string& file, const std::string& tensor) {
  auto it = entry.find(key);
  if (it == entry.end())
    fail(file, "tensor " + quote_name(tensor) + ": missing field '" + key + "' (entry is " + describe(entry) + ")");
  return &*it;
}

struct Parsed {
  TensorInfo info;
  uint64_t begin = 0, end = 0;  // relative to the data area
};

Parsed parse_entry(const std::string& name, const json& entry, uint64_t data_size, const std::string& file) {
  const std::string t = "tensor " + quote_name(name) + ": ";
  if (!entry.is_object())
    fail(file, t + "entry is " + describe(entry) + ", expected an object with dtype, shape and data_offsets");

  Parsed p;
  p.info.name = name;

  const json* dtype = field(entry, "dtype", file, name);
  if (!dtype->is_string()) fail(file, t + "dtype is " + describe(*dtype) + ", expected a string");
  const std::string& ds = dtype->get_ref<const std::string&>();
  // try_parse_dtype also takes CLI spellings ("f32", "float32"); a file must
  // use the safetensors spelling.
  if (!try_parse_dtype(ds, &p.info.dtype) || dtype_name(p.info.dtype) != ds || dtype_is_block(p.info.dtype))
    fail(file, t + "dtype " + quote_name(ds) + " is not supported (supported: F32, F16, BF16)");

  const json* shape = field(entry, "shape", file, name);
  if (!shape->is_array()) fail(file, t + "shape is " + describe(*shape) + ", expected an array of integers");
  uint64_t numel = 1;
  bool overflow = false;
  p.info.shape.reserve(shape->size());
  for (size_t i = 0; i < shape->size(); ++i) {
    uint64_t d = 0;
    std::string err = get_index((*shape)[i], &d);
    if (!err.empty()) fail(file, t + "shape[" + std::to_string(i) + "] " + err);
    p.info.shape.push_back(int64_t(d));
    if (!overflow && __builtin_mul_overflow(numel, d, &numel)) overflow = true;
  }
  uint64_t need = 0;
  size_t esize = dtype_size(p.info.dtype);
  // A zero dimension anywhere makes the tensor empty even if the product of
  // the others overflowed; check it before calling that an overflow.
  bool empty = std::find(p.info.shape.begin(), p.info.shape.end(), 0) != p.info.shape.end();
  if (empty) {
    numel = 0;
    overflow = false;
  }
  if (overflow || __builtin_mul_overflow(numel, uint64_t(esize), &need))
    fail(file, t + "shape " + shape_str(p.info.shape) + " of " + std::string(dtype_name(p.info.dtype)) +
                   " needs more than 2^64 bytes");

  const json* offs = field(entry, "data_offsets", file, name);
  if (!offs->is_array() || offs->size() != 2)
    fail(file, t + "data_offsets is " + describe(*offs) + ", expected [begin, end]");
  for (int i = 0; i < 2; ++i) {
    std::string err = get_index((*offs)[size_t(i)], i == 0 ? &p.begin : &p.end);
    if (!err.empty()) fail(file, t + "data_offsets " + (i == 0 ? "begin " : "end ") + err);
  }
  const std::string range = "[" + std::to_string(p.begin) + ", " + std::to_string(p.end) + "]";
  if (p.begin > p.end) fail(file, t + "data_offsets " + range + " has begin after end");
  if (p.end > data_size)
    fail(file, t + "data_offsets " + range + " ends beyond the data area, which holds " + std::to_string(data_size) +
                   " bytes (file truncated?)");
  if (p.end - p.begin != need)
    fail(file, t + "data_offsets " + range + " hold " + std::to_string(p.end - p.begin) + " bytes, but shape " +
                   shape_str(p.info.shape) + " of " + std::string(dtype_name(p.info.dtype)) + " needs " +
                   std::to_string(need) + " bytes");
  p.info.nbytes = need;
  return p;
}

void parse_metadata(const json& m, std::map<std::string, std::string>* out, const std::string& file) {
  if (!m.is_object()) fail(file, "__metadata__ is " + describe(m) + ", expected an object of strings");
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) fail(file, "__metadata__ " + quote_name(k) + " is " + describe(v) + ", expected a string");
    (*out)[k] = v.get<std::string>();
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void read_exact(int fd, uint8_t* dst, size_t n, uint64_t offset, const std::string& file) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, dst + done, n - done, off_t(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(file, "read failed at byte " + std::to_string(offset + done) + ": " + errno_text(errno));
    if (r == 0)
      fail(file, "file ended at byte " + std::to_string(offset + done) + " while reading " + std::to_string(n) +
                     " bytes from byte " + std::to_string(offset) + " (file changed while reading?)");
    done += size_t(r);
  }
}

// Opens a regular file for reading and returns it with its size.
Fd open_regular(const std::filesystem::path& path, uint64_t* size) {
  const std::string file = path.string();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(file, "cannot open: " + errno_text(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail(file, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail(file, "not a regular file");
  *size = uint64_t(st.st_size);
  return fd;
}

}  // namespace

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);  // validated on read: no overflow
  return n;
}

const TensorInfo* TensorIndex::find(const std::string& name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : &tensors[it->second];
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t len, uint64_t file_size,
                                           const std::string& file) {
  if (file_size < 8)
    fail(file, "file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");
  if (len < 8) fail(file, "only " + std::to_string(len) + " bytes of the header were read, 8 needed");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  if (n > kSafetensorsMaxHeaderBytes)
    fail(file, "header length " + std::to_string(n) + " is larger than the limit of " +
                   std::to_string(kSafetensorsMaxHeaderBytes) + " bytes (corrupt, or not a safetensors file)");
  if (n > file_size - 8)
    fail(file, "header length " + std::to_string(n) + " reaches beyond the end of the file (file is " +
                   std::to_string(file_size) + " bytes, header needs " + std::to_string(8 + n) + ")");
  if (n == 0) fail(file, "header length is 0, expected a JSON object");
  if (len - 8 < n)
    fail(file, "only " + std::to_string(len) + " bytes of the header were read, " + std::to_string(8 + n) +
                   " needed");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  json root = parse_json(text, text + n, file, "header");
  if (!root.is_object()) fail(file, "header is " + describe(root) + ", expected a JSON object");

  std::vector<Parsed> parsed;
  parsed.reserve(root.size());
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      parse_metadata(entry, &h.metadata, file);
      continue;
    }
    parsed.push_back(parse_entry(name, entry, data_size, file));
  }

  // Sorted by offset: the order to stream a file in, and the order in which
  // an overlap shows as a tensor starting before its predecessor ends.
  std::sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.info.name < b.info.name;
  });
  const Parsed* prev = nullptr;  // last non-empty tensor; empty ones occupy no bytes
  for (const Parsed& p : parsed) {
    if (p.begin == p.end) continue;
    if (prev && p.begin < prev->end)
      fail(file, "tensors " + quote_name(prev->info.name) + " [" + std::to_string(prev->begin) + ", " +
                     std::to_string(prev->end) + "] and " + quote_name(p.info.name) + " [" + std::to_string(p.begin) +
                     ", " + std::to_string(p.end) + "] overlap");
    prev = &p;
  }

  h.tensors.reserve(parsed.size());
  for (Parsed& p : parsed) {
    p.info.file = 0;
    p.info.offset = h.data_start + p.begin;
    h.tensors.push_back(std::move(p.info));
  }
  return h;
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string file = path.string();
  uint64_t size = 0;
  Fd guard = open_regular(path, &size);
  const int fd = guard.get();

  // Read the length field, then only the header it announces if that is
  // plausible; otherwise the parser reports the bad length from 8 bytes.
  std::vector<uint8_t> buf(size_t(std::min<uint64_t>(size, 8)));
  read_exact(fd, buf.data(), buf.size(), 0, file);
  if (size >= 8) {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(buf[size_t(i)]) << (8 * i);
    if (n <= kSafetensorsMaxHeaderBytes && n <= size - 8) {
      buf.resize(size_t(8 + n));
      read_exact(fd, buf.data() + 8, size_t(n), 8, file);
    }
  }
  return parse_safetensors_header(buf.data(), buf.size(), size, file);
}

namespace {

std::string read_small_file(const std::filesystem::path& path, uint64_t limit) {
  const std::string file = path.string();
  uint64_t size = 0;
  Fd fd = open_regular(path, &size);
  if (size > limit)
    fail(file, "file is " + std::to_string(size) + " bytes, larger than the limit of " + std::to_string(limit));
  std::string s(size_t(size), '\0');
  read_exact(fd.get(), reinterpret_cast<uint8_t*>(s.data()), s.size(), 0, file);
  return s;
}

// A shard named by an index must be a plain file name inside the model
// directory: the index is untrusted and must not reach other files.
bool plain_file_name(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find('\0') == std::string::npos && s.find("..") == std::string::npos && s != ".";
}

void add_file(TensorIndex* index, SafetensorsHeader h, const std::string& diag) {
  int file = int(index->files.size() - 1);
  for (TensorInfo& t : h.tensors) {
    t.file = file;
    auto [it, inserted] = index->by_name.emplace(t.name, index->tensors.size());
    if (!inserted)
      fail(diag, "tensor " + quote_name(t.name) + " is in both " + index->files[size_t(index->tensors[it->second].file)]
                                                                     .filename()
                                                                     .string() +
                     " and " + index->files[size_t(file)].filename().string());
    index->tensors.push_back(std::move(t));
  }
}

TensorIndex load_sharded(const std::filesystem::path& dir, const std::filesystem::path& index_path) {
  const std::string ifile = index_path.string();
  std::string text = read_small_file(index_path, kMaxIndexBytes);
  json root = parse_json(text.data(), text.data() + text.size(), ifile, "index");
  if (!root.is_object()) fail(ifile, "index is " + describe(root) + ", expected a JSON object");
  auto wm = root.find("weight_map");
  if (wm == root.end()) fail(ifile, "missing \"weight_map\"");
  if (!wm->is_object()) fail(ifile, "weight_map is " + describe(*wm) + ", expected an object");
  if (wm->empty()) fail(ifile, "weight_map lists no tensors");

  std::map<std::string, std::string> shard_of;  // tensor -> shard
  std::set<std::string> shards;
  for (const auto& [name, v] : wm->items()) {
    if (!v.is_string())
      fail(ifile, "weight_map: tensor " + quote_name(name) + " maps to " + describe(v) + ", expected a file name");
    const std::string& s = v.get_ref<const std::string&>();
    if (!plain_file_name(s))
      fail(ifile, "weight_map: tensor " + quote_name(name) + " names shard " + quote_name(s) +
                      ", which is not a plain file name inside the model directory");
    shard_of[name] = s;
    shards.insert(s);
  }

  TensorIndex index;
  for (const std::string& s : shards) {
    std::filesystem::path p = dir / s;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) {
      std::string example;
      for (const auto& [t, sh] : shard_of)
        if (sh == s) {
          example = t;
          break;
        }
      fail(ifile, "shard " + quote_name(s) + " (holding tensor " + quote_name(example) + ") does not exist in " +
                      dir.string());
    }
    index.files.push_back(p);
    add_file(&index, read_safetensors_header(p), ifile);
  }
  for (const auto& [name, s] : shard_of) {
    const TensorInfo* t = index.find(name);
    if (!t) fail(ifile, "tensor " + quote_name(name) + " is listed in shard " + quote_name(s) + " but " + s + " does not hold it");
    const std::string actual = index.files[size_t(t->file)].filename().string();
    if (actual != s)
      fail(ifile, "tensor " + quote_name(name) + " is listed in shard " + quote_name(s) + " but found in " + quote_name(actual));
  }
  return index;
}

}  // namespace

TensorIndex load_tensor_index(const std::filesystem::path& model_dir) {
  std::error_code ec;
  const std::filesystem::path index_path = model_dir / "model.safetensors.index.json";
  const std::filesystem::path single = model_dir / "model.safetensors";
  if (std::filesystem::exists(index_path, ec)) return load_sharded(model_dir, index_path);
  if (!std::filesystem::exists(single, ec)) {
    if (!std::filesystem::is_directory(model_dir, ec)) fail(model_dir.string(), "model directory does not exist");
    fail(model_dir.string(), "no model.safetensors or model.safetensors.index.json");
  }
  TensorIndex index;
  index.files.push_back(single);
  add_file(&index, read_safetensors_header(single), single.string());
  return index;
}

}  // namespace strata
