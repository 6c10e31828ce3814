// `wanstudio --inspect DIR|FILE`: the checkpoint layout found, each component's parameter count, dtypes and bytes,
// and the detected variant. Also the first half of the setup check.
#pragma once

#include <ostream>
#include <string>

namespace wan::app {

/// Prints the report to `out`; throws wan::Error (naming the file) when the directory is incomplete or a
/// file is malformed. A path that is a file is reported as one component file (inspectFile).
void inspectCheckpoint(const std::string& dir, std::ostream& out);

/// `--inspect FILE`: one component file's format, dtypes, tensor and parameter counts, what it holds (DiT, UMT5,
/// VAE, or another model such as an I2V DiT or a CLIP), key prefix, naming, fp8 scales, embedded tokenizer, and
/// the option that takes it.
void inspectFile(const std::string& path, std::ostream& out);

}  // namespace wan::app
