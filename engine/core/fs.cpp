#include "core/fs.h"

#include "core/core.h"

#include <filesystem>
#include <system_error>

namespace wan::fs {

namespace stdfs = std::filesystem;

bool is_file(const std::string& path) {
    std::error_code ec;
    return stdfs::is_regular_file(path, ec);
}

bool is_dir(const std::string& path) {
    std::error_code ec;
    return stdfs::is_directory(path, ec);
}

uint64_t file_size_or_zero(const std::string& path) {
    std::error_code ec;
    const auto size = stdfs::file_size(path, ec);
    return ec ? 0 : static_cast<uint64_t>(size);
}

void make_dirs(const std::string& dir) {
    if (dir.empty() || is_dir(dir)) return;
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    // Another process may have created it in between; only a folder that is still missing is an error.
    WAN_CHECK(!ec || is_dir(dir), "cannot create folder '%s': %s", dir.c_str(), ec.message().c_str());
}

void make_parent_dirs(const std::string& file) { make_dirs(stdfs::path(file).parent_path().string()); }

}  // namespace wan::fs
