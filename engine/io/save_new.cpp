#include "io/save_new.h"

#include "core/core.h"
#include "io/store_impl.h"

#include <sys/stat.h>

namespace wan::io {

void check_new_output(const std::string& path) {
    struct stat st;
    WAN_CHECK(::lstat(path.c_str(), &st) != 0, "output file '%s' already exists; WanStudio never overwrites outputs",
              path.c_str());
}

void save_safetensors_new(const std::string& path, const NamedTensors& tensors,
                          const std::map<std::string, std::string>& metadata) {
    // Checked first so that nothing is written for an existing file; the link() in AtomicFileWriter::commit()
    // settles a file that appears while we write.
    check_new_output(path);
    write_safetensors(path, tensors, metadata, Publish::NewOnly);
}

}  // namespace wan::io
