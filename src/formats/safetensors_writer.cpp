#include "formats/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error.h"
#include "formats/safetensors.h"

namespace strata {
namespace {

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw Error(file + ": " + what);
}

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

bool is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

uint64_t align_up(uint64_t x, uint64_t a, const std::string& file) {
  uint64_t r = 0;
  if (__builtin_add_overflow(x, a - 1, &r)) fail(file, "file would exceed 2^64 bytes");
  return r & ~(a - 1);
}

// A file written through a buffer, every write checked. `file` names the
// destination the user asked for, not the temporary.
class OutFile {
 public:
  OutFile(const std::filesystem::path& tmp, std::string file, size_t buffer_bytes)
      : tmp_(tmp), file_(std::move(file)), buf_(std::max<size_t>(buffer_bytes, 4096)) {
    fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(file_, "cannot create " + tmp.string() + ": " + errno_text(errno));
  }
  ~OutFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;

  void append(const void* p, size_t n) {
    auto src = static_cast<const uint8_t*>(p);
    while (n > 0) {
      size_t k = std::min(n, buf_.size() - used_);
      std::memcpy(buf_.data() + used_, src, k);
      used_ += k;
      src += k;
      n -= k;
      if (used_ == buf_.size()) flush();
    }
  }
  void append_zeros(uint64_t n) {
    while (n > 0) {
      size_t k = size_t(std::min<uint64_t>(n, buf_.size() - used_));
      std::memset(buf_.data() + used_, 0, k);
      used_ += k;
      n -= k;
      if (used_ == buf_.size()) flush();
    }
  }
  // Room for up to `want` bytes, written by the caller, then commit()ted.
  uint8_t* space(uint64_t want, size_t* got) {
    if (used_ == buf_.size()) flush();
    *got = size_t(std::min<uint64_t>(want, buf_.size() - used_));
    return buf_.data() + used_;
  }
  void commit(size_t n) {
    used_ += n;
    if (used_ == buf_.size()) flush();
  }
  uint64_t position() const { return written_ + used_; }

  void finish(bool sync) {
    flush();
    if (sync && ::fsync(fd_) != 0) fail(file_, "fsync failed: " + errno_text(errno));
    int fd = fd_;
    fd_ = -1;
    // close can report a deferred write error (NFS, quotas).
    if (::close(fd) != 0) fail(file_, "close failed: " + errno_text(errno));
  }

 private:
  void flush() {
    size_t done = 0;
    while (done < used_) {
      ssize_t r = ::write(fd_, buf_.data() + done, used_ - done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0)
        fail(file_, "write failed at byte " + std::to_string(written_ + done) + ": " + errno_text(errno));
      if (r == 0) fail(file_, "write made no progress at byte " + std::to_string(written_ + done));
      done += size_t(r);
    }
    written_ += used_;
    used_ = 0;
  }

  std::filesystem::path tmp_;
  std::string file_;
  std::vector<uint8_t> buf_;
  size_t used_ = 0;
  uint64_t written_ = 0;
  int fd_ = -1;
};

// Writes `path` via `path.tmp` and a rename; the temporary is removed if
// `body` or anything after it fails.
template <class Body>
void write_atomically(const std::filesystem::path& path, size_t buffer_bytes, bool sync, Body body) {
  const std::string file = path.string();
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  try {
    OutFile out(tmp, file, buffer_bytes);
    body(out);
    out.finish(sync);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      fail(file, "cannot rename " + tmp.string() + " to it: " + errno_text(errno));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (sync) {
    // Make the rename itself durable; failing here loses nothing but durability.
    std::filesystem::path parent = path.parent_path();
    if (parent.empty()) parent = ".";
    int dfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
}

}  // namespace

SafetensorsWriter::SafetensorsWriter() : SafetensorsWriter(Options{}) {}

SafetensorsWriter::SafetensorsWriter(Options options) : opt_(options) {
  if (!is_pow2(opt_.data_alignment) || !is_pow2(opt_.tensor_alignment))
    throw Error("SafetensorsWriter: data_alignment " + std::to_string(opt_.data_alignment) +
                " and tensor_alignment " + std::to_string(opt_.tensor_alignment) + " must be powers of two");
  opt_.data_alignment = std::max<uint64_t>(opt_.data_alignment, 8);
  if (opt_.chunk_bytes == 0) opt_.chunk_bytes = 1;
}

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape, Fill fill) {
  const std::string t = "SafetensorsWriter: tensor '" + name + "': ";
  if (name == "__metadata__") throw Error(t + "name is reserved by the format");
  if (names_.count(name)) throw Error(t + "added twice");
  if (!fill) throw Error(t + "no fill function");
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) throw Error(t + "negative dimension " + std::to_string(d));
    if (__builtin_mul_overflow(n, uint64_t(d), &n)) throw Error(t + "size overflows 2^64 bytes");
  }
  if (__builtin_add_overflow(tensor_bytes_, n, &tensor_bytes_)) throw Error(t + "total size overflows 2^64 bytes");
  names_.insert(name);
  entries_.push_back(Entry{std::move(name), dtype, std::move(shape), n, std::move(fill)});
}

void SafetensorsWriter::add_bytes(std::string name, DType dtype, std::vector<int64_t> shape, const void* data) {
  auto src = static_cast<const uint8_t*>(data);
  add(std::move(name), dtype, std::move(shape),
      [src](uint64_t off, uint8_t* dst, size_t len) { std::memcpy(dst, src + off, len); });
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  const std::string file = path.string();

  // Layout of the data area.
  std::vector<uint64_t> begin(entries_.size());
  uint64_t end = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    begin[i] = align_up(end, opt_.tensor_alignment, file);
    if (__builtin_add_overflow(begin[i], entries_[i].nbytes, &end)) fail(file, "file would exceed 2^64 bytes");
  }

  // Header, in the order tensors were added; __metadata__ first.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    header[e.name] = {{"dtype", std::string(dtype_name(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {begin[i], begin[i] + e.nbytes}}};
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& ex) {  // a name or metadata that is not UTF-8
    fail(file, std::string("cannot encode the header: ") + ex.what());
  }
  const uint64_t data_start = align_up(8 + text.size(), opt_.data_alignment, file);
  text.append(size_t(data_start - 8 - text.size()), ' ');
  if (text.size() > kSafetensorsMaxHeaderBytes)
    fail(file, "header of " + std::to_string(text.size()) + " bytes exceeds the format's limit of " +
                   std::to_string(kSafetensorsMaxHeaderBytes));

  write_atomically(path, opt_.chunk_bytes, opt_.sync, [&](OutFile& out) {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
    out.append(len, 8);
    out.append(text.data(), text.size());
    for (size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      out.append_zeros(data_start + begin[i] - out.position());
      for (uint64_t off = 0; off < e.nbytes;) {
        size_t got = 0;
        uint8_t* dst = out.space(std::min<uint64_t>(e.nbytes - off, opt_.chunk_bytes), &got);
        e.fill(off, dst, got);
        out.commit(got);
        off += got;
      }
    }
  });
}

std::vector<std::filesystem::path> write_sharded(const std::filesystem::path& dir,
                                                 const std::vector<TensorSource>& tensors,
                                                 uint64_t max_shard_bytes,
                                                 const std::map<std::string, std::string>& metadata,
                                                 SafetensorsWriter::Options options) {
  const std::string d = dir.string();
  if (max_shard_bytes == 0) fail(d, "max_shard_bytes must be positive");
  if (tensors.empty()) fail(d, "no tensors to write");

  // Build one writer per shard; add() validates names and shapes, so errors
  // come before any file is touched.
  std::vector<SafetensorsWriter> shards;
  std::vector<std::vector<const TensorSource*>> members;
  std::set<std::string> seen;
  uint64_t total = 0;
  for (const TensorSource& t : tensors) {
    if (!seen.insert(t.name).second) fail(d, "tensor '" + t.name + "' given twice");
    // Size for the split decision only; add() below reports bad shapes.
    uint64_t nb = dtype_size(t.dtype);
    for (int64_t x : t.shape)
      if (x < 0 || __builtin_mul_overflow(nb, uint64_t(x), &nb)) {
        nb = UINT64_MAX;
        break;
      }
    if (shards.empty() || (shards.back().size() > 0 && shards.back().tensor_bytes() + nb > max_shard_bytes)) {
      shards.emplace_back(options);
      members.emplace_back();
    }
    shards.back().add(t.name, t.dtype, t.shape, t.fill);
    members.back().push_back(&t);
    if (__builtin_add_overflow(total, nb, &total)) fail(d, "total size overflows 2^64 bytes");
  }

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(d, "cannot create directory: " + ec.message());
  // An index from an earlier write would make a half-rewritten directory
  // look loadable; it goes first and is replaced last.
  const std::filesystem::path index_path = dir / "model.safetensors.index.json";
  std::filesystem::remove(index_path, ec);
  if (ec) fail(index_path.string(), "cannot remove the previous index: " + ec.message());

  const size_t n = shards.size();
  std::vector<std::filesystem::path> paths;
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    for (const auto& [k, v] : metadata) shards[i].set_metadata(k, v);
    shards[i].write(dir / name);
    paths.push_back(dir / name);
    for (const TensorSource* t : members[i]) weight_map[t->name] = name;
  }

  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  std::string text = index.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_atomically(index_path, text.size(), options.sync,
                   [&](OutFile& out) { out.append(text.data(), text.size()); });
  return paths;
}

}  // namespace strata
