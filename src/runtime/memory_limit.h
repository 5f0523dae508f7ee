// How much memory this process may still take: MemAvailable, and the limit
// of its memory cgroup (v2 memory.max, v1 memory.limit_in_bytes) minus what
// the cgroup already uses, the way Docker, systemd and Kubernetes cap a
// container. The automatic budget uses the smaller.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace strata {

// Bytes left under the cgroup limit for a process whose /proc/self/cgroup
// reads `proc_self_cgroup`, with cgroup file systems mounted under
// `sysfs_root` (/sys/fs/cgroup); nullopt when no limit applies. The
// innermost limited cgroup on the path counts.
std::optional<uint64_t> cgroup_memory_available(const std::string& proc_self_cgroup,
                                                const std::filesystem::path& sysfs_root);

// MemAvailable from /proc/meminfo (4 GiB when unreadable), capped by this
// process's cgroup.
uint64_t available_memory();

}  // namespace strata
