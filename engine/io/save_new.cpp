#include "io/save_new.h"

#include "core/core.h"
#include "io/store_impl.h"

#include <sys/stat.h>

namespace wan::io {

void save_safetensors_new(const std::string& path, const NamedTensors& tensors,
                          const std::map<std::string, std::string>& metadata) {
    // Checked first so that nothing is written for an existing file (a dangling symbolic link counts too);
    // the link() in AtomicFileWriter::commit() settles a file that appears while we write.
    struct stat st;
    WAN_CHECK(::lstat(path.c_str(), &st) != 0, "output file '%s' already exists; WanStudio never overwrites outputs",
              path.c_str());
    write_safetensors(path, tensors, metadata, Publish::NewOnly);
}

}  // namespace wan::io
