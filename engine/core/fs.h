// Small filesystem questions and `mkdir -p`, over std::filesystem, for code that names paths as strings.
// None of the queries throws: a path that cannot be examined is "not a file" / "not a folder". Torch-free.
#pragma once

#include <cstdint>
#include <string>

namespace wan::fs {

/// A regular file (links followed).
bool is_file(const std::string& path);
/// A directory (links followed).
bool is_dir(const std::string& path);
/// Size in bytes of a regular file; 0 when it is not one or cannot be read.
uint64_t file_size_or_zero(const std::string& path);
/// `mkdir -p dir`; throws wan::Error "cannot create folder '<dir>': <reason>".
void make_dirs(const std::string& dir);
/// `mkdir -p` of the folder that will hold `file` (nothing when `file` has no folder part).
void make_parent_dirs(const std::string& file);

}  // namespace wan::fs
