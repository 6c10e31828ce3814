// `wanstudio --inspect DIR`: the checkpoint layout found, each component's parameter count, dtypes and bytes,
// and the detected variant. Also the first half of the setup check.
#pragma once

#include <ostream>
#include <string>

namespace wan::app {

/// Prints the report to `out`; throws wan::Error (naming the file) when the directory is incomplete or a
/// file is malformed.
void inspect_checkpoint(const std::string& dir, std::ostream& out);

}  // namespace wan::app
