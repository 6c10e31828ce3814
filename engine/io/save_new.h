// Writing a safetensors file that must never replace an existing one (--save-latents, the latent kept when a
// video cannot be written). Same rule as the videos (engine/video/files.cpp): an exclusively created
// temporary file beside the target, published with link(), which fails instead of replacing. Kept out of
// io/io.h so that adding it did not rebuild every module; declared next to save_safetensors in spirit.
#pragma once

#include "io/io.h"

#include <map>
#include <string>

namespace wan::io {

/// Throws wan::Error "output file '<path>' already exists; WanStudio never overwrites outputs" when anything
/// (a dangling symbolic link too) is at `path`. For checks before any work is done.
void check_new_output(const std::string& path);

/// save_safetensors() into a new file `path`. Throws wan::Error "… already exists; WanStudio never overwrites
/// outputs" when `path` exists (nothing is written then), or naming the path and the system's reason.
void save_safetensors_new(const std::string& path, const NamedTensors& tensors,
                          const std::map<std::string, std::string>& metadata = {});

}  // namespace wan::io
